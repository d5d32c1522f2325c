"""The sandbox's workspace with native streams, without a browser: the live feed carries a stream as it
grows and the thread status, a feedback button on the page becomes a signed ``block_actions`` payload,
and Slack's Stop becomes ``agent_session_stopped``. The bot's side is played by slack_sdk's client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import sign_request
from sandbox.workspace import Workspace

JSONDict = dict[str, Any]

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


class Receiver:
    """The bot's Events API endpoint, played by a recorder (checks the signature of what it gets)."""

    def __init__(self) -> None:
        self.url = ""
        self.bodies: list[tuple[str, str, str, str]] = []  # (content type, body, timestamp, signature)
        self.changed = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        headers = request.headers
        async with self.changed:
            self.bodies.append(
                (
                    request.content_type,
                    body,
                    headers["X-Slack-Request-Timestamp"],
                    headers["X-Slack-Signature"],
                )
            )
            self.changed.notify_all()
        return web.Response(status=200)

    async def wait(self, count: int) -> None:
        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(lambda: len(self.bodies) >= count)


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
    [(ctype, body, timestamp, signature)] = [b for b in receiver.bodies if b[0] != "application/json"]
    assert ctype == "application/x-www-form-urlencoded"
    assert signature == sign_request(workspace.signing_secret, timestamp, body)
    payload = json.loads(parse_qs(body)["payload"][0])
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
    event = json.loads(receiver.bodies[1][1])["event"]
    assert event["type"] == "agent_session_stopped" and event["streaming_message_ts"] == [started["ts"]]
    assert event["user"] == workspace.user_id and event["thread_ts"] == question["ts"]
    stream = workspace.message("D0001", started["ts"]).stream
    assert stream is not None and stream.state == "stopped_by_user"
