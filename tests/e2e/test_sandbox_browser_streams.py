"""The sandbox's page showing a native stream as Slack does, in headless Chromium: the thread status, the
text growing as Markdown, task cards, feedback buttons at the end (a click reaches the app as a signed
``block_actions``), and Slack's Stop. The workspace runs in-process; the bot's side is played by
slack_sdk's client, so this checks the page and the feed whatever the bot does.

Needs Debian's ``chromium`` and ``playwright`` (skipped without them outside CI). No sleeps: every wait is
for a condition on the page or on the fake.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.workspace import Workspace

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-sync"]
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")

if not IN_CI and (not Path(CHROMIUM).exists() or importlib.util.find_spec("playwright") is None):
    pytest.skip("needs Debian's chromium and playwright", allow_module_level=True)

from playwright.async_api import Page, async_playwright, expect  # noqa: E402

FEEDBACK: dict[str, Any] = {
    "type": "context_actions",
    "elements": [
        {
            "type": "feedback_buttons",
            "action_id": "answer_feedback",
            "positive_button": {"text": {"type": "plain_text", "text": "👍"}, "value": "good"},
            "negative_button": {"text": {"type": "plain_text", "text": "👎"}, "value": "bad"},
        }
    ],
}


@pytest.fixture
async def deliveries() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """The bot's Events API endpoint, played by a recorder of what Slack delivers."""
    got: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        got.append(json.loads(parse_qs(body)["payload"][0]) if "payload=" in body[:8] else json.loads(body))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events", got
    await runner.cleanup()


@pytest.fixture
async def workspace(deliveries: tuple[str, list[dict[str, Any]]]) -> AsyncIterator[Workspace]:
    async with Workspace() as ws:
        ws.app_url = deliveries[0]
        yield ws


@pytest.fixture
async def page(workspace: Workspace) -> AsyncIterator[Page]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 820})
        await page.goto(workspace.url)
        await expect(page.locator("#channel-title")).to_have_text("#general")
        yield page
        await browser.close()


async def ask(page: Page, workspace: Workspace, text: str) -> str:
    """Type a question in #general; returns its ts."""
    before = len(workspace.messages)
    await page.locator("#composer textarea").fill(text)
    await page.locator("#composer textarea").press("Enter")
    await workspace.wait_for(lambda: len(workspace.messages) > before)
    return max(workspace.messages.values(), key=lambda m: float(m.ts)).ts


async def test_native_stream_on_the_page(
    page: Page, workspace: Workspace, deliveries: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    bot = AsyncWebClient(token=workspace.bot_token, base_url=workspace.api_url)
    question = await ask(page, workspace, "@Threadline how do token buckets work?")
    await bot.assistant_threads_setStatus(channel_id="C0001", thread_ts=question, status="is thinking…")
    await expect(page.locator("#messages .thread-status")).to_have_text("Threadline is thinking…")

    plan = {"type": "task_update", "id": "model", "title": "Asking the model", "status": "in_progress"}
    started = await bot.chat_startStream(
        channel="C0001",
        thread_ts=question,
        recipient_user_id=workspace.user_id,
        recipient_team_id=workspace.team_id,
        chunks=[plan, {"type": "markdown_text", "text": "A **token bucket** holds"}],
    )
    thread = page.locator("#thread-messages")
    await expect(thread.locator(".md b")).to_have_text("token bucket")  # the thread opened by itself
    await expect(thread.locator(".caret")).to_have_count(1)
    await expect(thread.locator(".thread-status")).to_have_count(0)  # the reply cleared the status
    await expect(thread.locator(".task.in_progress .task-title")).to_have_text("Asking the model")

    ts = started["ts"]
    await bot.chat_appendStream(
        channel="C0001", ts=ts, markdown_text=" tokens.\n\n- it refills\n- calls spend"
    )
    await expect(thread.locator(".md li")).to_have_count(2)
    code = "\n\n```python\nbucket = Bucket(rate=50)\n```\n"
    await bot.chat_appendStream(
        channel="C0001",
        ts=ts,
        chunks=[
            {"type": "markdown_text", "text": code},
            dict(plan, status="complete", title="Model answered"),
        ],
    )
    await expect(thread.locator("pre.code")).to_have_text("bucket = Bucket(rate=50)")
    await expect(thread.locator(".task.complete .task-title")).to_have_text("Model answered")
    await page.screenshot(path=str(tmp_path / "streaming.png"))

    await bot.chat_stopStream(channel="C0001", ts=ts, blocks=[FEEDBACK])
    await expect(thread.locator(".caret")).to_have_count(0)
    up = thread.locator(".feedback-button", has_text="👍")
    await expect(up).to_be_visible()
    await page.screenshot(path=str(tmp_path / "finished.png"))
    _, got = deliveries
    await up.click()
    await expect(up).to_have_class("block-button feedback-button chosen")
    async with asyncio.timeout(5):
        await workspace.wait_for(lambda: any(d.get("type") == "block_actions" for d in got))
    [click] = [d for d in got if d.get("type") == "block_actions"]
    assert click["actions"][0]["value"] == "good" and click["container"]["message_ts"] == ts


async def test_stop_and_expiry_on_the_page(
    page: Page, workspace: Workspace, deliveries: tuple[str, list[dict[str, Any]]]
) -> None:
    bot = AsyncWebClient(token=workspace.bot_token, base_url=workspace.api_url)
    question = await ask(page, workspace, "@Threadline write a long essay")
    args = {"recipient_user_id": workspace.user_id, "recipient_team_id": workspace.team_id}
    started = await bot.chat_startStream(
        channel="C0001", thread_ts=question, markdown_text="Once upon", **args
    )
    thread = page.locator("#thread-messages")
    await thread.locator(".stream-stop").click()
    await expect(thread.locator(".stream-pill")).to_have_text("Stopped")
    _, got = deliveries
    await workspace.wait_for(
        lambda: any(d.get("event", {}).get("type") == "agent_session_stopped" for d in got)
    )
    stream = workspace.message("C0001", started["ts"]).stream
    assert stream is not None and stream.state == "stopped_by_user"

    workspace.stream_lifetime = 0.2
    second = await bot.chat_startStream(channel="C0001", thread_ts=question, markdown_text="Again", **args)
    await expect(thread.locator(".stream-pill")).to_have_count(2)  # expired by Slack's clock, unprompted
    expired = workspace.message("C0001", second["ts"]).stream
    assert expired is not None and expired.state == "expired"
