"""The sandbox's workspace with native streams, without a browser: the live feed carries a stream as it
grows and the thread status, a feedback button on the page becomes a signed ``block_actions`` payload,
and Slack's Stop becomes ``agent_session_stopped``. The bot's side is played by slack_sdk's client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.workspace import Workspace
from tests import sandbox_receiver
from tests.sandbox_receiver import JSONDict, Receiver, assert_signed, ui

receiver, workspace, http = sandbox_receiver.receiver, sandbox_receiver.workspace, sandbox_receiver.http

FEEDBACK: dict[str, Any] = {
    "type": "context_actions",
    "block_id": "feedback",
    "elements": [
        {
            "type": "feedback_buttons",
            "action_id": "answer_feedback",
            "positive_button": {"text": {"type": "plain_text", "text": "👍"}, "value": "good"},
            "negative_button": {"text": {"type": "plain_text", "text": "👎"}, "value": "bad"},
        }
    ],
}


async def test_feed_carries_the_stream_and_the_status(
    workspace: Workspace, http: aiohttp.ClientSession
) -> None:
    bot = AsyncWebClient(token=workspace.bot_token, base_url=workspace.api_url)
    async with http.get(f"{workspace.url}/ui/stream") as feed:

        async def next_event(kind: str) -> JSONDict:
            async with asyncio.timeout(5):
                while True:
                    line = (await feed.content.readline()).decode()
                    if line.startswith("data: "):
                        data = json.loads(line[len("data: ") :])
                        if data["type"] == kind:
                            assert isinstance(data, dict)
                            return data

        assert (await next_event("snapshot"))["thread_statuses"] == []
        question = await ui(http, workspace, "/ui/post", channel="C0001", text="@Threadline explain")
        await bot.assistant_threads_setStatus(
            channel_id="C0001", thread_ts=question["ts"], status="is thinking…"
        )
        shown = await next_event("thread_status")
        assert (shown["thread_ts"], shown["status"]) == (question["ts"], "is thinking…")

        started = await bot.chat_startStream(
            channel="C0001",
            thread_ts=question["ts"],
            recipient_user_id=workspace.user_id,
            recipient_team_id=workspace.team_id,
            markdown_text="**Token",
        )
        cleared = await next_event("thread_status")  # the stream is the app's reply: the status goes
        assert cleared["status"] == ""
        stream = (await next_event("message"))["message"]["stream"]
        assert stream["state"] == "in_progress" and stream["markdown"] == "**Token"
        await bot.chat_appendStream(channel="C0001", ts=started["ts"], markdown_text=" buckets**\n\n- refill")
        grown = (await next_event("message"))["message"]
        assert grown["stream"]["segments"] == [{"kind": "markdown", "value": "**Token buckets**\n\n- refill"}]
        await bot.chat_stopStream(channel="C0001", ts=started["ts"], blocks=[FEEDBACK])
        done = (await next_event("message"))["message"]
        assert done["stream"]["state"] == "completed" and done["blocks"] == [FEEDBACK]

        snapshot = workspace.snapshot()
        [answer] = [m for m in snapshot["messages"] if m["stream"] is not None]
        assert answer["text"] == "**Token buckets**\n\n- refill"


async def test_stream_expiry_reaches_the_page(workspace: Workspace, http: aiohttp.ClientSession) -> None:
    bot = AsyncWebClient(token=workspace.bot_token, base_url=workspace.api_url)
    workspace.stream_lifetime = 0.05
    question = await ui(http, workspace, "/ui/post", channel="D0001", text="hi")
    started = await bot.chat_startStream(channel="D0001", thread_ts=question["ts"], markdown_text="partial")
    msg = workspace.message("D0001", started["ts"])
    # nobody calls Slack: the fake's own timer ends the stream and tells the page
    await workspace.wait_for(lambda: msg.stream is not None and msg.stream.state == "expired", timeout=2)
    assert workspace.message_json(msg)["stream"]["state"] == "expired"


async def test_feedback_button_on_the_page(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    bot = AsyncWebClient(token=workspace.bot_token, base_url=workspace.api_url)
    question = await ui(http, workspace, "/ui/post", channel="C0001", text="@Threadline q")
    started = await bot.chat_startStream(
        channel="C0001",
        thread_ts=question["ts"],
        recipient_user_id=workspace.user_id,
        recipient_team_id=workspace.team_id,
        markdown_text="answer",
    )
    await bot.chat_stopStream(channel="C0001", ts=started["ts"], blocks=[FEEDBACK])
    await ui(
        http,
        workspace,
        "/ui/action",
        channel="C0001",
        ts=started["ts"],
        action_id="answer_feedback",
        block_id="feedback",
        value="bad",
    )
    await receiver.wait(3)  # the mention (app_mention and message), then the press
    [press] = [d for d in receiver.got if d.content_type != "application/json"]
    assert press.content_type == "application/x-www-form-urlencoded"
    assert_signed(workspace, press)
    payload = json.loads(press.form()["payload"])
    assert payload["type"] == "block_actions" and payload["user"]["id"] == workspace.user_id
    [action] = payload["actions"]
    assert (action["type"], action["action_id"], action["block_id"], action["value"]) == (
        "feedback_buttons",
        "answer_feedback",
        "feedback",
        "bad",
    )
    assert action["text"]["text"] == "👎" and payload["channel"]["name"] == "general"
    async with http.post(
        f"{workspace.url}/ui/action", json={"channel": "C0001", "ts": started["ts"], "value": "meh"}
    ) as resp:
        assert resp.status == 404


async def test_stop_on_the_page_stops_the_stream(
    workspace: Workspace, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    bot = AsyncWebClient(token=workspace.bot_token, base_url=workspace.api_url)
    question = await ui(http, workspace, "/ui/post", channel="D0001", text="a long one")
    started = await bot.chat_startStream(channel="D0001", thread_ts=question["ts"], markdown_text="so far")
    stopped = await ui(http, workspace, "/ui/stop", channel="D0001", thread_ts=question["ts"])
    assert stopped["stopped"] == [started["ts"]]
    await receiver.wait(2)
    event = receiver.got[1].json()["event"]
    assert event["type"] == "agent_session_stopped" and event["streaming_message_ts"] == [started["ts"]]
    assert event["user"] == workspace.user_id and event["thread_ts"] == question["ts"]
    stream = workspace.message("D0001", started["ts"]).stream
    assert stream is not None and stream.state == "stopped_by_user"
