"""Hostile HTTP clients against a real ``python -m bot`` process (HTTP mode, its own GC tuning).

Anyone who can reach the port can send these; none needs a valid signature. The process must answer
each at once and give its memory back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from tests.conftest import bot_env
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.procs import BotProcess

SLACK_MAX_BODY_BYTES = 1024 * 1024  # as bot.constants: Slack's payloads are far smaller


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def _chunked(total: int) -> AsyncIterator[bytes]:
    piece = b"y" * 65536
    for _ in range(total // len(piece)):
        yield piece


MALFORMED: list[tuple[bytes, dict[str, str]]] = [
    (b"{bad", {"Content-Type": "application/json"}),
    (b"[1, 2]", {"Content-Type": "application/json"}),
    (b"\xff\xfe\xfa", {"Content-Type": "application/json"}),
    (b"command=%2Fask&text=hi", {"Content-Type": "application/json"}),
    (b"payload=%7Bbad", {"Content-Type": "application/x-www-form-urlencoded"}),
    (b'{"event": null}', {"Content-Type": "application/json", "X-Slack-Request-Timestamp": "soon"}),
    (b'{"type": "event_callback"}', {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=1"}),
]


async def test_oversized_and_malformed_requests_leave_memory_bounded(
    slack: FakeSlack, model: FakeOpenAI
) -> None:
    bot = BotProcess(env=bot_env(slack, model))
    await bot.start()
    try:
        assert bot.proc is not None
        pid = bot.proc.pid
        big = b"x" * (2 * SLACK_MAX_BODY_BYTES)
        statuses: list[int] = []
        malformed: list[int] = []
        async with aiohttp.ClientSession() as http:
            # Warm up (first requests import and allocate once), then measure.
            async with http.post(bot.url, data=b"{}", headers={"Content-Type": "application/json"}) as r:
                await r.read()
            before = rss_mb(pid)
            log_before = len(bot.output())
            gate = asyncio.Semaphore(32)

            async def send(data: object, headers: dict[str, str], into: list[int] = statuses) -> None:
                async with gate:
                    try:
                        async with http.post(bot.url, data=data, headers=headers) as resp:
                            await resp.read()
                            into.append(resp.status)
                    except aiohttp.ClientError:
                        into.append(-1)  # the server may close before the client is done sending

            json_headers = {"Content-Type": "application/json"}
            await asyncio.gather(
                *(send(big, json_headers) for _ in range(200)),  # a declared Content-Length
                *(send(_chunked(2 * SLACK_MAX_BODY_BYTES), json_headers) for _ in range(100)),  # chunked
                *(send(body, headers, malformed) for body, headers in MALFORMED for _ in range(40)),
            )
            after = rss_mb(pid)
            logged = bot.output()[log_before:]
            # The process still answers.
            async with http.get(bot.url.replace("/slack/events", "/healthz")) as resp:
                assert resp.status == 200
        oversized = statuses.count(413) + statuses.count(-1)
        assert oversized >= 300, statuses
        # Unsigned: 401 before anything parses the body; at most a DEBUG line each (none at INFO).
        assert malformed == [401] * len(MALFORMED) * 40, malformed
        assert len(logged) < 1000, logged[:3000]  # was a ~1.9 KB traceback for each
        # 300 refused bodies of 2 MiB held ~700 MB before; a bounded process grows by a few MB.
        assert after - before < 60, f"RSS grew from {before:.0f} to {after:.0f} MB"
    finally:
        await bot.close()
