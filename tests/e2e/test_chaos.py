"""Chaos (issue 14): two replicas on one Redis; the replica that received four questions of one channel
is killed with SIGKILL at several moments between the ack and the final edit. Every question is answered
exactly once, in channel order, by the survivor."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest

from tests.conftest import bot_env
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.procs import BotProcess
from tests.redis_fixtures import redis_server  # noqa: F401
from tests.redis_server import RedisServer

JSONDict = dict[str, object]


class EchoModel(FakeOpenAI):
    """Answers each question with its own words, slowly enough to be killed mid-answer."""

    def reply_for(self, body: JSONDict) -> Reply:
        messages = body.get("messages") or []
        assert isinstance(messages, list)
        found = re.findall(r"q\d", str(messages[-1].get("content", ""))) if messages else []
        question = found[-1] if found else "?"
        words = " ".join(f"{question}-w{i}" for i in range(12))
        return Reply.text(f"answer to {question}: {words}", delay=0.03)


@pytest.fixture
async def echo() -> AsyncIterator[EchoModel]:
    async with EchoModel() as fake:
        yield fake


@pytest.mark.parametrize("moment", ["right_after_the_ack", "placeholders_posting", "mid_answer"])
async def test_sigkill_of_the_busy_replica_loses_nothing_and_keeps_order(
    moment: str,
    slack: FakeSlack,
    echo: EchoModel,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    redis_server.start()
    from bot.redis import connect

    client = connect(redis_server.url)
    await client.flushall()
    await client.aclose()
    env = bot_env(
        slack,
        echo,
        REDIS_URL=redis_server.url,
        LOG_LEVEL="INFO",
        # A survivor takes a killed replica's job when its lease lapses. Not shorter: a replica
        # starved of CPU for a second (a loaded machine, tests in parallel) keeps a live lease.
        BOT_LEASE_SECONDS="3",
        BOT_POSTS_PER_CHANNEL_BURST="1",  # the fourth placeholder waits ~3 s for the channel's pace
        BOT_POSTS_PER_CHANNEL_PER_SECOND="1",
    )
    a, b = BotProcess(dict(env)), BotProcess(dict(env))
    try:
        await asyncio.gather(a.start(), b.start())
        events = [slack.mention_event("C1", f"q{i}") for i in range(4)]
        for event in events:
            status, _ = await slack.send_event(a.url, event)
            assert status == 200
        if moment == "placeholders_posting":
            await slack.wait_for(lambda: len(slack.calls_to("chat.postMessage")) >= 2, 10)
        elif moment == "mid_answer":
            await slack.wait_for(lambda: any("-w2" in m.text for m in slack.bot_messages("C1")), 10)
        a.kill()

        def answer_of(i: int) -> list[str]:
            return [m.text for m in slack.thread("C1", str(events[i]["ts"])) if m.user == slack.bot_user_id]

        def done() -> bool:
            return all(
                len(answer_of(i)) == 1
                and answer_of(i)[0].startswith(f"answer to q{i}:")
                and answer_of(i)[0].endswith("-w11")
                for i in range(4)
            )

        try:
            await slack.wait_for(done, 40)
        except TimeoutError as exc:  # what the survivor (and the victim, before it died) logged
            raise AssertionError(f"survivor:\n{b.output()[-6000:]}\nvictim:\n{a.output()[-3000:]}") from exc
        # In channel order: each question's final text landed after the one before it.
        finals = []
        for i in range(4):
            (message,) = [m for m in slack.thread("C1", str(events[i]["ts"])) if m.user == slack.bot_user_id]
            finals.append(message.edits[-1].at if message.edits else message.posted_at)
        assert finals == sorted(finals), finals
    finally:
        await a.close()
        await b.close()
