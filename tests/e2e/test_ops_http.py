"""Operations over HTTP (issue 15 item 8, issue 14 item 12): the address the bot binds (``HOST``),
readiness and metrics on their own port (``BOT_OPS_PORT``), no Bolt warning about an unused token at
start, and an ack that never waits on Slack (Bolt is given our start-up auth.test)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from bot.app import Runtime
from bot.settings import Settings
from tests.conftest import StartBot, bot_env
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack


async def status_of(url: str, method: str = "GET") -> int:
    async with aiohttp.ClientSession() as http, http.request(method, url) as resp:
        return resp.status


async def test_host_decides_the_address(slack: FakeSlack, model: FakeOpenAI) -> None:
    runtime = Runtime(Settings.from_env(bot_env(slack, model, HOST="127.0.0.1")))
    await runtime.start()
    try:
        await runtime.serve(port=0)  # no host given: the setting's
        assert runtime._runner is not None
        assert [address[0] for address in runtime._runner.addresses] == ["127.0.0.1"]
    finally:
        await runtime.stop(grace=0.5)


async def test_readiness_and_metrics_on_their_own_port(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_OPS_PORT="0")
    ops = bot.runtime.ops_port
    assert ops is not None and ops != bot.runtime.port
    ops_base = f"http://127.0.0.1:{ops}"
    # The public port: Slack's endpoint and liveness only.
    assert await status_of(f"{bot.base}/healthz") == 200
    assert await status_of(f"{bot.base}/readyz") == 404
    assert await status_of(f"{bot.base}/metrics") == 404
    model.script(Reply.text("Still answering."))
    event = slack.mention_event("C1", "hello")
    status, _ = await slack.send_event(bot.url, event)
    assert status == 200
    await slack.wait_for(lambda: [m.text for m in slack.bot_messages("C1")] == ["Still answering."], 10)
    # The operations port: health, readiness and metrics, nothing from Slack.
    assert await status_of(f"{ops_base}/healthz") == 200
    assert await status_of(f"{ops_base}/readyz") == 200
    assert await status_of(f"{ops_base}/metrics") == 200
    assert await status_of(f"{ops_base}/slack/events", "POST") in (404, 405)


async def test_everything_on_one_port_without_bot_ops_port(slack: FakeSlack, start_bot: StartBot) -> None:
    bot = await start_bot()
    assert bot.runtime.ops_port is None
    for path in ("/healthz", "/readyz", "/metrics"):
        assert await status_of(f"{bot.base}{path}") == 200, path


async def test_no_warning_about_an_unused_token_at_start(
    slack: FakeSlack, start_bot: StartBot, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in production: the token is in the process environment, where Bolt looks for one too.
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
    caplog.set_level(logging.INFO, logger="threadline.bolt")
    bot = await start_bot()
    bolt = [r.getMessage() for r in caplog.records if r.name.startswith("threadline.bolt")]
    assert not [m for m in bolt if "token" in m], bolt
    # The filter was for the app's construction only: Bolt's later warnings still reach the log.
    assert not logging.getLogger("threadline.bolt").filters
    assert bot.runtime.bolt is not None


async def test_ack_never_waits_on_slack_over_http(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    assert len(slack.calls_to("auth.test")) == 1  # ours, at start
    slack.latency["auth.test"] = 30.0  # Slack slow: anything that waits on auth.test waits 30 s
    model.script(Reply.text("Acked at once."))
    event = slack.mention_event("C1", "the first event after start")
    try:
        async with asyncio.timeout(5):  # Slack's deadline is 3 s; the fake would take 30
            status, _ = await slack.send_event(bot.url, event)
    finally:
        slack.latency.clear()
    assert status == 200
    await slack.wait_for(lambda: [m.text for m in slack.bot_messages("C1")] == ["Acked at once."], 10)
    assert len(slack.calls_to("auth.test")) == 1


async def test_ack_never_waits_on_slack_in_socket_mode(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    await start_bot(SLACK_APP_TOKEN=slack.app_token, SLACK_SIGNING_SECRET="")
    slack.latency["auth.test"] = 30.0
    model.script(Reply.text("Acked at once."))
    event = slack.mention_event("C1", "the first envelope after start")
    try:
        await slack.wait_ack(await slack.push_event(event), timeout=5)
    finally:
        slack.latency.clear()
    await slack.wait_for(lambda: [m.text for m in slack.bot_messages("C1")] == ["Acked at once."], 10)
    assert len(slack.calls_to("auth.test")) == 1
