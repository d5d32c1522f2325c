"""/readyz reflects now (issue 15 item 4): Slack, the model server and Redis are re-checked on a schedule,
each check time-boxed, and the probe answers from the last round without waiting on any of them. A
dependency that was down at start, or goes down later, is reported and recovers without a restart;
/healthz stays pure liveness."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp

from tests.conftest import Bot, StartBot
from tests.e2e.test_e2e_ops import eventually
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.redis_fixtures import redis_server  # noqa: F401
from tests.redis_server import RedisServer

FAST = {"BOT_READINESS_INTERVAL_SECONDS": "0.05", "BOT_READINESS_TIMEOUT_SECONDS": "0.5"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def get(bot: Bot, path: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{bot.base}{path}") as resp:
        return resp.status, await resp.json()


async def readiness_becomes(bot: Bot, status: int, check: str, predicate: Any = "ok") -> dict[str, Any]:
    """Re-asks /readyz until it answers ``status`` with ``checks[check]`` matching; returns the body."""
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        code, body = await get(bot, "/readyz")
        seen.update(body)
        value = body["checks"].get(check, "")
        matches = predicate(value) if callable(predicate) else value == predicate
        return code == status and bool(matches)

    await eventually(reached)
    return seen


async def test_a_model_server_down_at_start_is_ready_once_it_is_up(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    port = free_port()
    # (a refused connection takes the openai client about 0.5 s to report: time enough for it)
    bot = await start_bot(
        OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1", **{**FAST, "BOT_READINESS_TIMEOUT_SECONDS": "3"}
    )
    status, body = await get(bot, "/readyz")
    assert status == 503 and body["checks"]["model"].startswith("ModelUnreachable"), body
    assert (await get(bot, "/healthz"))[0] == 200  # alive all the same

    late = FakeOpenAI()
    await late.start(port)  # the model server comes up: no restart of the bot
    try:
        body = await readiness_becomes(bot, 200, "model")
        assert body["checks"] == {"serving": "ok", "slack": "ok", "model": "ok"}
    finally:
        await late.stop()
    # ... and goes away again: reported again.
    await readiness_becomes(bot, 503, "model", lambda v: v.startswith("ModelUnreachable"))


async def test_slack_is_rechecked_and_each_check_is_time_boxed(slack: FakeSlack, start_bot: StartBot) -> None:
    bot = await start_bot(**FAST)
    await readiness_becomes(bot, 200, "slack")
    slack.latency["auth.test"] = 30.0  # Slack stops answering auth.test
    body = await readiness_becomes(bot, 503, "slack", lambda v: v.startswith("no answer within 0.5s"))
    assert body["checks"]["model"] == "ok"
    del slack.latency["auth.test"]
    await readiness_becomes(bot, 200, "slack")

    slack.fail("auth.test", status=200, error="token_revoked", times=1_000)  # a refusal is named
    await readiness_becomes(bot, 503, "slack", "auth.test failed (token_revoked)")


async def test_redis_is_rechecked(
    slack: FakeSlack,
    model: FakeOpenAI,
    start_bot: StartBot,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    redis_server.start()
    bot = await start_bot(REDIS_URL=redis_server.url, **FAST)
    await readiness_becomes(bot, 200, "redis")
    redis_server.stop()
    try:
        # unreachable, or no answer within the check's time (the client retries with backoff)
        await readiness_becomes(bot, 503, "redis", lambda v: v == "unreachable" or v.startswith("no answer"))
    finally:
        redis_server.start()
    await readiness_becomes(bot, 200, "redis")


async def test_a_probe_never_runs_a_check(slack: FakeSlack, start_bot: StartBot) -> None:
    bot = await start_bot(BOT_READINESS_INTERVAL_SECONDS="3600")
    dependencies = bot.runtime.dependencies
    assert dependencies.rounds == 1  # the round at start
    slack.latency["*"] = 30.0  # Slack hangs: the probe answers from the last round all the same
    try:
        for _ in range(20):
            status, _ = await get(bot, "/readyz")
            assert status == 200
    finally:
        slack.latency.clear()
    assert dependencies.rounds == 1
    assert len(slack.calls_to("auth.test")) == 1  # the start-up call only


async def test_the_checker_stops_with_the_runtime(slack: FakeSlack, start_bot: StartBot) -> None:
    bot = await start_bot(**FAST)
    task = bot.runtime.dependencies._task
    assert task is not None and not task.done()
    await bot.runtime.stop(grace=1.0)
    assert task.done() and bot.runtime.dependencies._task is None
