"""The sandbox without a browser: the workspace's page endpoints turn what a person does into correctly
signed deliveries (checked by a stub receiver), the live feed carries every change, the demo model streams
a labelled answer, and ``python -m bot sandbox`` runs the real bot against it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from openai import AsyncOpenAI
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.demo_model import (
    ANSWER_END,
    DEMO_LABEL,
    LONG_ANSWER_END,
    WORD_SECONDS,
    DemoModel,
    demo_answer,
)
from sandbox.fake_openai import FakeOpenAI, Reply
from sandbox.ports import free_port
from sandbox.runner import (
    Sandbox,
    bot_attempts,
    demo_word_seconds,
    is_placeholder,
    model_configured,
    slack_configured,
)
from sandbox.workspace import Workspace
from tests import sandbox_receiver
from tests.redis_fixtures import redis_client, redis_server  # noqa: F401
from tests.redis_server import RedisServer
from tests.sandbox_receiver import JSONDict, Receiver, assert_signed, ui

receiver, workspace, http = sandbox_receiver.receiver, sandbox_receiver.workspace, sandbox_receiver.http

# ---------------------------------------------------------------------- what you type → what the bot gets


async def test_mention_becomes_a_signed_app_mention(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    posted = await ui(http, workspace, "/ui/post", channel="C0001", text="@Threadline is 1 < 2 & 3 > 2?")
    delivery, also = await receiver.wait(2)
    assert_signed(workspace, delivery)
    assert_signed(workspace, also)
    # As Slack: the app subscribes to message.channels too, so the mention also comes as a message
    # event (the bot answers it once, as the mention).
    message = also.json()["event"]
    assert (message["type"], message["channel_type"], message["ts"]) == ("message", "channel", posted["ts"])
    assert delivery.content_type == "application/json"
    body = delivery.json()
    assert body["type"] == "event_callback" and body["team_id"] == workspace.team_id
    event = body["event"]
    assert event["type"] == "app_mention"
    assert event["text"] == "<@U0BOT> is 1 &lt; 2 &amp; 3 &gt; 2?"  # as Slack stores what people type
    assert event["user"] == "U0YOU" and event["channel"] == "C0001" and event["ts"] == posted["ts"]
    assert "thread_ts" not in event and "channel_type" not in event
    assert workspace.message("C0001", posted["ts"]).text == event["text"]


async def test_thread_reply_mention_carries_the_thread(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    root = await ui(http, workspace, "/ui/post", channel="C0002", text="hello @threadline")
    await ui(http, workspace, "/ui/post", channel="C0002", text="@Threadline more", thread_ts=root["ts"])
    got = await receiver.wait(4)
    first, second = [d for d in got if d.json()["event"]["type"] == "app_mention"]
    assert first.json()["event"]["text"] == "hello <@U0BOT>"
    event = second.json()["event"]
    assert event["thread_ts"] == root["ts"] and event["parent_user_id"] == "U0YOU"
    assert first.json()["event_id"] != second.json()["event_id"]


async def test_dm_is_a_message_event_of_an_im(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    await ui(http, workspace, "/ui/post", channel="D0001", text="what is a token bucket?")
    (delivery,) = await receiver.wait(1)
    assert_signed(workspace, delivery)
    event = delivery.json()["event"]
    assert event["type"] == "message" and event["channel_type"] == "im"
    assert event["text"] == "what is a token bucket?"


async def test_channel_chatter_is_delivered_only_where_the_bot_is(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    posted = await ui(http, workspace, "/ui/post", channel="C0001", text="morning all, no bot here")
    # The bot is a member and subscribes to message.channels: it gets the message (and ignores it).
    [(kind, event)] = workspace.deliveries  # decided synchronously, before the answer
    assert (kind, event["type"], event["channel_type"]) == ("event", "message", "channel")
    assert workspace.message("C0001", posted["ts"]).user == "U0YOU"
    # Where the bot is not a member, nothing; a mention there: Slackbot says so, the bot is not told.
    await ui(http, workspace, "/ui/post", channel="C0003", text="@Threadline hello?")
    await ui(http, workspace, "/ui/post", channel="C0003", text="just chatting")
    assert len(workspace.deliveries) == 1
    (note,) = workspace.ephemerals(channel="C0003")
    assert note.user == "USLACKBOT" and "not in this channel" in note.text
    assert len(await receiver.wait(1)) == 1


async def test_ask_is_a_signed_slash_command_and_its_response_url_shows_privately(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    await ui(http, workspace, "/ui/command", channel="C0003", command="/ask", text="are you there?")
    (delivery,) = await receiver.wait(1)
    assert_signed(workspace, delivery)
    assert delivery.content_type == "application/x-www-form-urlencoded"
    fields = delivery.form()
    assert fields["command"] == "/ask" and fields["text"] == "are you there?"
    assert fields["channel_id"] == "C0003" and fields["channel_name"] == "lounge"
    assert fields["user_id"] == "U0YOU" and fields["team_id"] == workspace.team_id
    # The bot answers through the response URL (it may not post in #lounge): only you see it.
    async with http.post(fields["response_url"], json={"text": "_Working on it…_"}) as resp:
        assert resp.status == 200
    async with http.post(fields["response_url"], json={"text": "Yes.", "replace_original": True}) as resp:
        assert resp.status == 200
    (shown,) = workspace.ephemerals(channel="C0003")
    assert shown.text == "Yes." and shown.user == workspace.bot_user_id
    assert workspace.message_json(shown)["via"] == "response_url"


async def test_command_ack_text_is_shown_to_you(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    receiver.reply = (200, json.dumps({"text": "Usage: `/ask <question>`"}))
    await ui(http, workspace, "/ui/command", channel="C0001", command="/ask", text="")
    await workspace.wait_for(lambda: bool(workspace.ephemerals(channel="C0001")))
    (shown,) = workspace.ephemerals(channel="C0001")
    assert shown.text == "Usage: `/ask <question>`"


async def test_failed_delivery_is_told(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    receiver.reply = (500, "")
    await ui(http, workspace, "/ui/command", channel="C0001", command="/ask", text="hi")
    await workspace.wait_for(lambda: bool(workspace.ephemerals(channel="C0001")))
    (note,) = workspace.ephemerals(channel="C0001")
    assert note.user == "USLACKBOT" and "dispatch_failed" in note.text and "500" in note.text


async def test_button_sends_a_signed_block_actions_payload(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    client = AsyncWebClient(token=workspace.bot_token, base_url=workspace.api_url)
    question = await ui(http, workspace, "/ui/post", channel="C0001", text="@Threadline hi")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Thinking", "verbatim": True}},
        {
            "type": "actions",
            "block_id": "threadline_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "threadline_stop",
                    "text": {"type": "plain_text", "text": "Stop"},
                    "style": "danger",
                    "value": "req-1",
                }
            ],
        },
    ]
    posted = await client.chat_postMessage(
        channel="C0001", thread_ts=question["ts"], text="Thinking", blocks=blocks
    )
    await ui(http, workspace, "/ui/action", channel="C0001", ts=posted["ts"], action_id="threadline_stop")
    got = await receiver.wait(3)  # the mention (app_mention and message), then the press
    [delivery] = [d for d in got if d.content_type == "application/x-www-form-urlencoded"]
    assert_signed(workspace, delivery)
    payload = json.loads(delivery.form()["payload"])
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U0YOU" and payload["team"]["id"] == workspace.team_id
    assert payload["channel"]["id"] == "C0001"
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": "C0001",
        "is_ephemeral": False,
        "thread_ts": question["ts"],
    }
    assert payload["message"]["ts"] == posted["ts"] and payload["message"]["blocks"] == blocks
    (action,) = payload["actions"]
    assert action["action_id"] == "threadline_stop" and action["block_id"] == "threadline_actions"
    assert action["value"] == "req-1" and action["type"] == "button"
    # replace_original on the action's response URL edits the message with the button.
    async with http.post(payload["response_url"], json={"replace_original": True, "text": "Stopped"}) as r:
        assert r.status == 200
    assert workspace.message("C0001", posted["ts"]).text == "Stopped"


async def test_summarize_thread_sends_a_signed_message_action_payload(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    question = await ui(http, workspace, "/ui/post", channel="C0002", text="Lunch at noon?")
    reply = await ui(http, workspace, "/ui/post", channel="C0002", text="Yes!", thread_ts=question["ts"])
    shown = await ui(http, workspace, "/ui/shortcut", channel="C0002", ts=reply["ts"])
    assert shown["thread_ts"] == question["ts"]  # the page opens the thread the summary goes into
    # The two messages were delivered as message events (the bot is in #random), then the shortcut.
    *messages, delivery = await receiver.wait(3)
    assert [m.json()["event"]["type"] for m in messages] == ["message", "message"]
    assert_signed(workspace, delivery)
    payload = json.loads(delivery.form()["payload"])
    assert payload["type"] == "message_action" and payload["callback_id"] == "summarize_thread"
    assert payload["user"]["id"] == "U0YOU" and payload["team"]["id"] == workspace.team_id
    assert payload["channel"] == {"id": "C0002", "name": "random"} and payload["trigger_id"]
    assert payload["message"]["ts"] == reply["ts"] and payload["message"]["thread_ts"] == question["ts"]
    assert payload["message"]["text"] == "Yes!" and payload["message"]["user"] == "U0YOU"
    # What the bot posts to the shortcut's response URL shows in that thread, to you alone.
    async with http.post(payload["response_url"], json={"text": "Invite me first"}) as r:
        assert r.status == 200
    (note,) = [m for m in workspace.ephemerals(user="U0YOU") if m.text == "Invite me first"]
    assert note.thread_ts == question["ts"]
    async with http.post(f"{workspace.url}/ui/shortcut", json={"channel": "C0002", "ts": "1.0"}) as r:
        assert r.status == 404


async def test_unknown_button_and_bad_requests_are_refused(
    workspace: Workspace, http: aiohttp.ClientSession
) -> None:
    posted = await ui(http, workspace, "/ui/post", channel="C0001", text="plain")
    async with http.post(
        f"{workspace.url}/ui/action", json={"channel": "C0001", "ts": posted["ts"], "action_id": "x"}
    ) as resp:
        assert resp.status == 404
    async with http.post(f"{workspace.url}/ui/post", json={"channel": "C9999", "text": "x"}) as resp:
        assert resp.status == 400
    async with http.post(f"{workspace.url}/ui/post", data="channel=C0001&text=x") as resp:
        assert resp.status == 415  # JSON only: a plain cross-site form post cannot act
    async with http.post(
        f"{workspace.url}/ui/post",
        json={"channel": "C0001", "text": "x"},
        headers={"Origin": "https://evil.example"},
    ) as resp:
        assert resp.status == 403
    async with http.get(f"{workspace.url}/", headers={"Host": "rebound.example:80"}) as resp:
        assert resp.status == 403


# ---------------------------------------------------------------------- the live feed


async def test_live_feed_sends_a_snapshot_then_every_change(
    workspace: Workspace, http: aiohttp.ClientSession
) -> None:
    client = AsyncWebClient(token=workspace.bot_token, base_url=workspace.api_url)
    async with http.get(f"{workspace.url}/ui/stream") as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")

        async def next_event() -> JSONDict:
            async with asyncio.timeout(5):
                while True:
                    line = (await stream.content.readline()).decode()
                    if line.startswith("data: "):
                        data = json.loads(line[len("data: ") :])
                        assert isinstance(data, dict)
                        return data

        snapshot = await next_event()
        assert snapshot["type"] == "snapshot" and snapshot["messages"] == []
        assert [c["name"] for c in snapshot["channels"]] == ["general", "random", "lounge", "Threadline"]
        assert snapshot["users"]["U0BOT"] == "Threadline"

        posted = await ui(http, workspace, "/ui/post", channel="C0002", text="hi all")
        event = await next_event()
        assert event["message"]["ts"] == posted["ts"] and event["message"]["text"] == "hi all"

        answer = await client.chat_postMessage(channel="C0002", thread_ts=posted["ts"], text="_Thinking…_")
        assert (await next_event())["message"]["text"] == "_Thinking…_"
        await client.chat_update(channel="C0002", ts=answer["ts"], text="Hello")
        updated = (await next_event())["message"]
        assert updated["text"] == "Hello" and updated["edits"] == 1 and updated["bot"] is True
        await client.reactions_add(channel="C0002", timestamp=posted["ts"], name="eyes")
        reacted = (await next_event())["message"]
        assert reacted["reactions"] == [{"name": "eyes", "count": 1, "users": ["U0BOT"]}]
        await client.chat_postEphemeral(channel="C0002", user="U0YOU", text="psst")
        assert (await next_event())["message"]["ephemeral"] is True
        await client.chat_delete(channel="C0002", ts=answer["ts"])
        assert (await next_event())["message"]["deleted"] is True

        workspace.set_status(bot="ready")
        assert (await next_event())["status"]["bot"] == "ready"


async def test_page_is_served(workspace: Workspace, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{workspace.url}/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
    assert "<title>Threadline sandbox</title>" in page and "/ui/stream" in page


# ---------------------------------------------------------------------- the demo model


async def test_demo_model_streams_a_labelled_useful_answer() -> None:
    async with DemoModel(word_seconds=0.002, first_word_seconds=0.0) as model:
        client = AsyncOpenAI(api_key=model.api_key, base_url=model.base_url, max_retries=0)
        stream = await client.chat.completions.create(
            model="threadline-demo",
            messages=[
                {"role": "system", "content": "You are a test."},
                {"role": "user", "content": "<@U0YOU>: how do I use &lt;tags&gt;?"},
            ],
            stream=True,
        )
        deltas = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        await client.close()
    text = "".join(deltas)
    assert text.startswith(DEMO_LABEL + "\n")
    assert len([d for d in deltas if d]) > 50  # word by word
    assert "“how do I use <tags>?”" in text
    assert "OPENAI_API_KEY" in text and "OPENAI_BASE_URL" in text and "```sh" in text
    assert "\n1. " in text and text.rstrip().endswith(ANSWER_END)


async def test_demo_model_fails_as_its_trigger_words_ask(http: aiohttp.ClientSession) -> None:
    async with DemoModel(word_seconds=0.0, first_word_seconds=0.0, max_attempts=2) as model:

        async def ask(question: str) -> tuple[int, str | None]:
            body = {"model": "threadline-demo", "messages": [{"role": "user", "content": question}]}
            headers = {"Authorization": f"Bearer {model.api_key}"}
            async with http.post(f"{model.base_url}/chat/completions", json=body, headers=headers) as resp:
                if resp.status == 200:
                    assert DEMO_LABEL in (await resp.json())["choices"][0]["message"]["content"]
                return resp.status, resp.headers.get("Retry-After")

        # flaky: one 500 (Retry-After 1 s: the bot's retry waits that long), then the answer; and again.
        flaky = [await ask("<@U0YOU>: is it flaky?") for _ in range(3)]
        assert flaky == [(500, "1"), (200, None), (500, "1")]
        # fail / broken: as many 503s as the bot makes attempts, then the answer (the Retry button's).
        failing = [await ask(q) for q in ["Why does it FAIL?", "why does  it fail?", "why does it fail?"]]
        assert failing == [(503, None), (503, None), (200, None)]  # counted per question, as typed
        assert [(await ask("it's broken"))[0] for _ in range(4)] == [503, 503, 200, 503]
        assert [(await ask(q))[0] for q in ("failing tests", "the failure", "a failover")] == [503] * 3
        # Anything else is answered at once, a word that merely contains a trigger included.
        assert [(await ask(q))[0] for q in ("hi", "unbroken flakyness", "long")] == [200] * 3


def test_trigger_words_are_in_the_help_and_attempts_follow_the_bot() -> None:
    answer = demo_answer({"messages": [{"role": "user", "content": "what can I try?"}]})
    assert "*flaky*" in answer and "*fail*" in answer and "*broken*" in answer and "Retry" in answer
    assert "Stop" in answer and "wait in line" in answer
    assert bot_attempts({}) == 3 and bot_attempts({"BOT_MAX_ATTEMPTS": " 2 "}) == 2
    assert bot_attempts({"BOT_MAX_ATTEMPTS": "many"}) == 3  # the bot refuses it anyway


def test_the_demo_pace_is_settable() -> None:
    assert demo_word_seconds({}) == WORD_SECONDS
    assert demo_word_seconds({"SANDBOX_DEMO_WORD_SECONDS": " 0.005 "}) == 0.005
    assert demo_word_seconds({"SANDBOX_DEMO_WORD_SECONDS": "0"}) == 0.0
    for bad in ("fast", "-1", "nan", "inf"):
        assert demo_word_seconds({"SANDBOX_DEMO_WORD_SECONDS": bad}) == WORD_SECONDS, bad


def test_demo_model_long_answer_and_context() -> None:
    long = demo_answer({"messages": [{"role": "user", "content": "a LONG answer please"}]})
    assert long.rstrip().endswith(LONG_ANSWER_END) and len(long.split()) > 400
    follow_up = demo_answer(
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "q1"},
                {"role": "assistant", "content": "a1"},
                {"role": "user", "content": "q2"},
            ]
        }
    )
    assert "2 earlier turns" in follow_up and "“q2”" in follow_up
    assert LONG_ANSWER_END not in demo_answer({"messages": [{"role": "user", "content": "it belongs"}]})


def test_demo_model_answers_a_summary_request_with_what_it_received() -> None:
    request = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "<@U0YOU>: Lunch at noon?"},
            {"role": "user", "content": "<@U0BOB>: Yes, &lt;noon&gt; works"},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "<@U0YOU>: Summarize this thread."},
        ]
    }
    summary = demo_answer(request)
    assert "Summary of this thread" in summary and "3 messages from 3 authors" in summary
    assert "starts with: “Lunch at noon?”" in summary and "The newest: “Noted.”" in summary
    assert "You asked" not in summary and summary.rstrip().endswith(ANSWER_END)
    empty = demo_answer({"messages": [{"role": "user", "content": "<@U0YOU>: Summarize this thread."}]})
    assert "nothing to summarize" in empty


def test_configuration_choices() -> None:
    assert is_placeholder("") and is_placeholder("xoxb-...") and is_placeholder(None)
    assert not is_placeholder("xoxb-123")
    assert not slack_configured({}) and not slack_configured({"SLACK_BOT_TOKEN": "xoxb-..."})
    assert slack_configured({"SLACK_BOT_TOKEN": "xoxb-1-2"})
    assert not model_configured({"OPENAI_API_KEY": "sk-..."})
    assert model_configured({"OPENAI_API_KEY": "sk-real"})
    assert model_configured({"OPENAI_BASE_URL": "http://localhost:11434/v1"})


# ---------------------------------------------------------------------- the whole sandbox as a process

READY = re.compile(r"sandbox is ready\. Open (http://127\.0\.0\.1:\d+)")
ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Slack, model, bot or Redis settings (nor ``PORT``)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "OPENAI_", "BOT_", "REDIS_")) and k != "PORT"
    }
    return {**env, **extra}


@dataclass
class Running:
    proc: asyncio.subprocess.Process
    url: str  # the page's address, from the ready line
    lines: list[str]  # the output, stdout and stderr together

    def output(self) -> str:
        return "\n".join(self.lines)


@contextlib.asynccontextmanager
async def running(argv: list[str], *, env: dict[str, str], cwd: Path) -> AsyncIterator[Running]:
    """Start ``argv`` (the sandbox, one way or another), wait for its ready line; stop it (SIGTERM) after."""
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not (ready := READY.search(lines[-1] if lines else "")):
                line = (await proc.stdout.readline()).decode()
                assert line, "exited before it was ready:\n" + "\n".join(lines)
                lines.append(line.rstrip())
        yield Running(proc, ready.group(1), lines)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rest = await proc.stdout.read()
            await proc.wait()
        lines.extend(rest.decode().splitlines())


async def mention(http: aiohttp.ClientSession, base: str, text: str, channel: str = "C0001") -> str:
    """Post ``text`` as you in ``channel`` through the page's endpoint; its ts."""
    async with http.post(f"{base}/ui/post", json={"channel": channel, "text": text}) as resp:
        assert resp.status == 200, await resp.text()
        ts = (await resp.json())["ts"]
        assert isinstance(ts, str)
        return ts


async def watch(
    http: aiohttp.ClientSession,
    base: str,
    done: Callable[[list[JSONDict]], bool],
    timeout: float = 20,
) -> list[JSONDict]:
    """Follow the page's live feed until ``done(seen)``; ``seen``: every state of every message, in
    order (the snapshot's first)."""
    seen: list[JSONDict] = []
    async with http.get(f"{base}/ui/stream") as stream, asyncio.timeout(timeout):
        while not done(seen):
            line = (await stream.content.readline()).decode()
            if line.startswith("data: "):
                event = json.loads(line[len("data: ") :])
                if event["type"] == "snapshot":
                    seen.extend(event["messages"])
                elif event["type"] == "message":
                    seen.append(event["message"])
    return seen


def bot_texts(seen: list[JSONDict], thread_ts: str) -> list[str]:
    """What the bot's messages in the thread showed: a message's text, or its section (or Markdown)
    blocks' text. A native stream's blocks are its buttons: its text is the streamed Markdown."""
    texts = []
    for m in seen:
        if m["bot"] and m["thread_ts"] == thread_ts and not m.get("deleted"):
            blocks = m["blocks"] or []
            sections = [b["text"]["text"] for b in blocks if b.get("type") == "section"]
            markdown = [b["text"] for b in blocks if b.get("type") == "markdown"]
            texts.append("\n\n".join(sections) if sections else "".join(markdown) or m["text"])
    return texts


async def bot_texts_until(http: aiohttp.ClientSession, base: str, thread_ts: str, shown: str) -> list[str]:
    """Every text the bot showed in the thread, until one shows ``shown``."""
    seen = await watch(http, base, lambda seen: any(shown in t for t in bot_texts(seen, thread_ts)))
    return bot_texts(seen, thread_ts)


def reactions(seen: list[JSONDict], ts: str) -> list[str]:
    """The reactions the newest state of message ``ts`` carries."""
    states = [m for m in seen if m["ts"] == ts and not m["bot"]]
    return [r["name"] for r in (states[-1].get("reactions") or [])] if states else []


async def test_python_m_bot_sandbox_answers_a_mention_with_the_demo_model(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    port = free_port()
    env = clean_env(PORT=str(port), BOT_MAX_ATTEMPTS="1", SANDBOX_DEMO_WORD_SECONDS="0.005")
    async with running([sys.executable, "-m", "bot", "sandbox"], env=env, cwd=tmp_path) as sandbox:
        assert sandbox.url == f"http://127.0.0.1:{port}"
        ts = await mention(http, sandbox.url, "@Threadline hi")
        # The demo model's labelled answer streams in (stopping the sandbox ends it: no need to wait).
        texts = await bot_texts_until(http, sandbox.url, ts, "You asked: “hi”")
        # Streamed natively by default (Slack renders the Markdown), or edited as Slack mrkdwn.
        assert texts[-1].startswith(("*(Demo model — set OPENAI_API_KEY", "_(Demo model — set")), texts
    assert sandbox.proc.returncode == 0, sandbox.output()
    assert "answers come from the demo model" in sandbox.output()
    assert "xoxb-sandbox" not in sandbox.output()  # the bot's log redacts the token it was given


async def test_sandbox_answers_with_the_configured_model_server(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    async with FakeOpenAI(api_key="sk-configured") as model:
        model.default_reply = Reply.text("An answer from the configured model server.", delay=0.01)
        env = clean_env(
            PORT=str(free_port()),
            OPENAI_API_KEY=model.api_key,
            OPENAI_BASE_URL=model.base_url,
            OPENAI_MODEL="served-model",
        )
        async with running([sys.executable, "-m", "bot", "sandbox"], env=env, cwd=tmp_path) as sandbox:
            ts = await mention(http, sandbox.url, "@Threadline which model are you?")
            texts = await bot_texts_until(http, sandbox.url, ts, "from the configured model server.")
        assert sandbox.proc.returncode == 0, sandbox.output()
        assert not any("Demo model" in text for text in texts), texts
        assert f"model: served-model at {model.base_url}" in sandbox.output()
        assert "demo model" not in sandbox.output()
        asked = [r for r in model.requests if r.get("stream")]
        assert [r["model"] for r in asked] == ["served-model"]
        assert "which model are you?" in asked[0]["messages"][-1]["content"]


async def test_sandbox_keeps_its_state_in_the_configured_redis(
    http: aiohttp.ClientSession,
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
    redis_client: aioredis.Redis,  # noqa: F811
) -> None:
    async with FakeOpenAI() as model:
        model.default_reply = Reply.text("Stored in Redis.", delay=0.01)
        env = clean_env(
            PORT=str(free_port()),
            OPENAI_API_KEY=model.api_key,
            OPENAI_BASE_URL=model.base_url,
            REDIS_URL=redis_server.url,
        )
        async with running([sys.executable, "-m", "bot", "sandbox"], env=env, cwd=tmp_path) as sandbox:
            ts = await mention(http, sandbox.url, "@Threadline remember this")
            # ✅ on the question: answered, and the conversation stored (the reaction comes after it).
            seen = await watch(http, sandbox.url, lambda seen: "white_check_mark" in reactions(seen, ts))
            assert any("Stored in Redis." in text for text in bot_texts(seen, ts))
            keys = [key async for key in redis_client.scan_iter(match=f"*conv:*:C0001:{ts}")]
            assert len(keys) == 1, keys
            turns = [json.loads(turn) for turn in await redis_client.lrange(keys[0], 0, -1)]
        assert sandbox.proc.returncode == 0, sandbox.output()
    assert any("remember this" in json.dumps(turn) for turn in turns), turns
    assert any("Stored in Redis." in json.dumps(turn) for turn in turns), turns


LOCK_FILES = ("constraints.txt", "constraints-dev.txt")  # with pyproject.toml, what bootstrap.sh stamps


def venv_copy(target: Path) -> Path:
    """A ``.venv`` in ``target`` made of links to this test run's virtualenv, stamped as installed (dev) for
    ``target``'s pyproject.toml and lock files, so ``scripts/bootstrap.sh`` there uses it as is (no pip)."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs the tests to run in the project's virtualenv (scripts/test.sh makes it)")
    venv = target / ".venv"
    venv.mkdir()
    for entry in Path(sys.prefix).iterdir():
        if not entry.name.startswith(".installed-"):
            (venv / entry.name).symlink_to(entry)
    locked = b"".join((target / name).read_bytes() for name in ("pyproject.toml", *LOCK_FILES))
    digest = hashlib.sha1(locked).hexdigest()[:12]
    (venv / f".installed-dev-{digest}").touch()
    return venv


async def test_run_script_without_slack_credentials_starts_the_sandbox(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    # A copy of the project without a .env, in an environment without SLACK_BOT_TOKEN: the README's run
    # command. Its .venv links to this one and is stamped as installed, so nothing is reinstalled.
    checkout = tmp_path / "threadline"
    checkout.mkdir()
    for name in ("scripts", "bot", "handlers", "sandbox"):
        shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", *LOCK_FILES):
        shutil.copy2(ROOT / name, checkout / name)
    venv = venv_copy(checkout)
    before = sorted(p.name for p in venv.iterdir())
    port = free_port()
    env = clean_env(PORT=str(port), BOT_MAX_ATTEMPTS="1")
    async with running(["bash", str(checkout / "scripts" / "run.sh")], env=env, cwd=tmp_path) as sandbox:
        assert sandbox.url == f"http://127.0.0.1:{port}"
        async with http.get(sandbox.url) as resp:
            assert resp.status == 200 and "<title>Threadline sandbox</title>" in await resp.text()
    assert sandbox.proc.returncode == 0, sandbox.output()
    assert "no SLACK_BOT_TOKEN configured" in sandbox.output()
    assert "answers come from the demo model" in sandbox.output()
    assert sorted(p.name for p in venv.iterdir()) == before, "bootstrap.sh reinstalled"


async def test_page_port_is_the_next_free_one_when_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        sandbox = Sandbox(env={}, port=port)
        await sandbox._serve_workspace()
        try:
            assert port < sandbox.workspace.port <= port + 20
        finally:
            await sandbox.workspace.stop()


async def test_ctrl_c_lets_the_answer_in_flight_finish_with_the_demo_model(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Issue 14 item 16: Ctrl-C stops the bot first (it finishes its answers), then the demo model."""
    # The answer is still being written when Ctrl-C comes (about 2 s at this pace).
    env = clean_env(
        PORT=str(free_port()), BOT_MAX_ATTEMPTS="1", LOG_LEVEL="INFO", SANDBOX_DEMO_WORD_SECONDS="0.01"
    )
    async with running([sys.executable, "-m", "bot", "sandbox"], env=env, cwd=tmp_path) as sandbox:
        ts = await mention(http, sandbox.url, "@Threadline hi")
        await bot_texts_until(http, sandbox.url, ts, "Demo model")  # the answer is being written
        sandbox.proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(sandbox.proc.wait(), 60)
    output = sandbox.output()
    assert sandbox.proc.returncode == 0, output
    assert "finished: ok" in output, output
    assert "couldn't reach" not in output and "finished: failed" not in output, output
