"""The sandbox without a browser: the workspace's page endpoints turn what a person does into correctly
signed deliveries (checked by a stub receiver), the live feed carries every change, the demo model streams
a labelled answer, and ``python -m bot sandbox`` runs the real bot against it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from openai import AsyncOpenAI
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.demo_model import ANSWER_END, DEMO_LABEL, LONG_ANSWER_END, DemoModel, demo_answer
from sandbox.runner import Sandbox, free_port, is_placeholder, model_configured, slack_configured
from sandbox.slack import sign_request
from sandbox.workspace import Workspace

JSONDict = dict[str, Any]


@dataclass
class Delivery:
    content_type: str
    body: str
    timestamp: str
    signature: str

    def json(self) -> JSONDict:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body).items()}


@dataclass
class Receiver:
    """A stand-in for the bot's Events API endpoint: records what it gets, answers ``reply``."""

    url: str = ""
    got: list[Delivery] = field(default_factory=list)
    reply: tuple[int, str] = (200, "")
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(
            Delivery(
                content_type=request.content_type,
                body=(await request.read()).decode(),
                timestamp=request.headers["X-Slack-Request-Timestamp"],
                signature=request.headers["X-Slack-Signature"],
            )
        )
        self.changed.set()
        status, text = self.reply
        return web.Response(status=status, text=text, content_type="application/json" if text else None)

    async def wait(self, count: int) -> list[Delivery]:
        async with asyncio.timeout(5):
            while len(self.got) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.got


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/slack/events", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield rec
    await runner.cleanup()


@pytest.fixture
async def workspace(receiver: Receiver) -> AsyncIterator[Workspace]:
    ws = Workspace()
    await ws.start()
    ws.app_url = receiver.url
    yield ws
    await ws.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def ui(http: aiohttp.ClientSession, ws: Workspace, path: str, **body: Any) -> JSONDict:
    async with http.post(f"{ws.url}{path}", json=body) as resp:
        assert resp.status == 200, await resp.text()
        data = await resp.json()
        assert isinstance(data, dict)
        return data


def assert_signed(ws: Workspace, delivery: Delivery) -> None:
    assert delivery.signature == sign_request(ws.signing_secret, delivery.timestamp, delivery.body)
    assert abs(int(delivery.timestamp) - time.time()) < 60


# ---------------------------------------------------------------------- what you type → what the bot gets


async def test_mention_becomes_a_signed_app_mention(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    posted = await ui(http, workspace, "/ui/post", channel="C0001", text="@Threadline is 1 < 2 & 3 > 2?")
    (delivery,) = await receiver.wait(1)
    assert_signed(workspace, delivery)
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
    first, second = await receiver.wait(2)
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


async def test_channel_chatter_is_not_delivered(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    posted = await ui(http, workspace, "/ui/post", channel="C0001", text="morning all, no bot here")
    assert workspace.deliveries == []  # decided synchronously, before the answer
    assert workspace.message("C0001", posted["ts"]).user == "U0YOU"
    # A mention where the bot is not a member: Slackbot says so, the bot is not told.
    await ui(http, workspace, "/ui/post", channel="C0003", text="@Threadline hello?")
    assert workspace.deliveries == []
    (note,) = workspace.ephemerals(channel="C0003")
    assert note.user == "USLACKBOT" and "not in this channel" in note.text
    assert receiver.got == []


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
    _, delivery = await receiver.wait(2)
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
    async with DemoModel(word_seconds=0.005, first_word_seconds=0.0) as model:
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


def test_configuration_choices() -> None:
    assert is_placeholder("") and is_placeholder("xoxb-...") and is_placeholder(None)
    assert not is_placeholder("xoxb-123")
    assert not slack_configured({}) and not slack_configured({"SLACK_BOT_TOKEN": "xoxb-..."})
    assert slack_configured({"SLACK_BOT_TOKEN": "xoxb-1-2"})
    assert not model_configured({"OPENAI_API_KEY": "sk-..."})
    assert model_configured({"OPENAI_API_KEY": "sk-real"})
    assert model_configured({"OPENAI_BASE_URL": "http://localhost:11434/v1"})


# ---------------------------------------------------------------------- the whole sandbox as a process


async def test_python_m_bot_sandbox_answers_a_mention_with_the_demo_model(
    http: aiohttp.ClientSession, tmp_path: Any
) -> None:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "OPENAI_", "BOT_", "REDIS_")) and k != "PORT"
    }
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "sandbox",
        env={**clean, "PORT": str(port), "BOT_MAX_ATTEMPTS": "1"},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while not any("ready. Open" in line for line in lines):
                line = (await proc.stdout.readline()).decode()
                assert line, "\n".join(lines)
                lines.append(line.rstrip())
        assert f"http://127.0.0.1:{port}" in lines[-1]
        base = f"http://127.0.0.1:{port}"
        async with http.post(f"{base}/ui/post", json={"channel": "C0001", "text": "@Threadline hi"}) as resp:
            question = await resp.json()
        async with http.get(f"{base}/ui/stream") as stream:
            async with asyncio.timeout(20):
                while True:
                    line = (await stream.content.readline()).decode()
                    if not line.startswith("data: "):
                        continue
                    event = json.loads(line[6:])
                    messages = event["messages"] if event["type"] == "snapshot" else [event.get("message")]
                    texts = [
                        m["text"]
                        for m in messages
                        if m and m["bot"] and m["thread_ts"] == question["ts"] and not m["blocks"]
                    ]
                    texts += [
                        b["text"]["text"]
                        for m in messages
                        if m and m["bot"] and m["thread_ts"] == question["ts"]
                        for b in m["blocks"] or []
                        if b.get("type") == "section"
                    ]
                    if any(ANSWER_END in t for t in texts):
                        assert any("Demo model" in t for t in texts)
                        break
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rest = await proc.stdout.read() if proc.stdout else b""
            await proc.wait()
    output = "\n".join(lines) + rest.decode()
    assert proc.returncode == 0, output
    assert "xoxb-sandbox" not in output  # the bot's log redacts the token it was given


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
