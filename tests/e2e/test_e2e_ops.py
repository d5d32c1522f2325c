"""Operations, end to end against the fakes: /metrics after a scripted conversation, /readyz, feedback
reactions, access control, the per-user rate limit and the daily token budgets, and the Socket Mode
watchdog. Each test asserts what a person in Slack (or an operator scraping the bot) would see."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.limits import policy
from bot.metrics import AnswerStats, Metrics
from bot.texts import BUSY_TEXT, THINKING_TEXT
from tests.conftest import Bot, StartBot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack, Message
from tests.redis_fixtures import redis_client, redis_server  # noqa: F401
from tests.redis_server import RedisServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(bot: Bot) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(f"{bot.base}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def eventually(condition: Callable[[], Awaitable[bool]], *, timeout: float = 5.0) -> None:
    """For state with nothing to wait on (metrics, logs after an ack): re-check every few ms."""
    async with asyncio.timeout(timeout):
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def replies(slack: FakeSlack, channel: str, thread_ts: str) -> list[Message]:
    return [m for m in slack.thread(channel, thread_ts) if m.user == slack.bot_user_id]


def texts(slack: FakeSlack, channel: str, thread_ts: str) -> list[str]:
    return [m.text for m in replies(slack, channel, thread_ts)]


async def answered(slack: FakeSlack, channel: str, thread_ts: str, expected: list[str]) -> None:
    await slack.wait_for(lambda: texts(slack, channel, thread_ts) == expected, timeout=10)


def request_id_of(message: Message) -> str:
    metadata: Any = message.args.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return str(metadata["event_payload"]["request_id"])


async def ask(
    slack: FakeSlack, bot: Bot, channel: str, text: str, *, user: str = "U_ALICE"
) -> dict[str, Any]:
    event = slack.mention_event(channel, text, user=user)
    status, _ = await slack.send_event(bot.url, event)
    assert status == 200
    return event


# -- metrics --------------------------------------------------------------------------------------


async def test_metrics_after_a_scripted_conversation(slack: FakeSlack, model: FakeOpenAI, bot: Bot) -> None:
    before = await scrape(bot)
    # Every known label value is exported from the start, at 0.
    assert value(before, "threadline_requests_total", source="command") == 0
    assert value(before, "threadline_feedback_total", vote="down") == 0
    assert ("threadline_answers_in_flight", frozenset()) in before

    model.script(
        Reply.text("one two three four", delay=0.01),
        Reply.error(500),  # the DM's first attempt fails and is retried
        Reply.text("dm answer"),
        Reply.text("command answer"),
    )
    slack.fail("chat.update", status=429, retry_after=1, times=1)
    mention = await ask(slack, bot, "C1", "count to four")
    await answered(slack, "C1", mention["ts"], ["one two three four"])
    dm = slack.dm_event("D1", "hello in private")
    await slack.send_event(bot.url, dm)
    await answered(slack, "D1", dm["ts"], ["dm answer"])
    await slack.send_command(bot.url, text="and a command", channel_id="C7")
    await slack.wait_for(lambda: any("command answer" in m.text for m in slack.bot_messages("C7")), 10)

    async def settled() -> bool:
        return value(await scrape(bot), "threadline_answers_total", outcome="ok") == 3

    await eventually(settled)
    m = await scrape(bot)
    assert {s: value(m, "threadline_requests_total", source=s) for s in ("mention", "dm", "command")} == {
        "mention": 1,
        "dm": 1,
        "command": 1,
    }
    assert value(m, "threadline_answers_in_flight") == 0
    assert value(m, "threadline_queue_depth") == 0
    assert value(m, "threadline_queue_wait_seconds_count") == 3
    assert value(m, "threadline_time_to_first_token_seconds_count") == 3
    assert value(m, "threadline_time_to_final_text_seconds_count") == 3
    assert value(m, "threadline_time_to_final_text_seconds_sum") >= value(
        m, "threadline_time_to_first_token_seconds_sum"
    )
    accepted_edits = [c for c in slack.calls_to("chat.update") if c.ok]
    assert value(m, "threadline_edits_total") == len(accepted_edits) > 0
    assert value(m, "threadline_slack_ratelimited_total", method="chat.update") == 1
    assert value(m, "threadline_model_errors_total", cause="unavailable") == 1
    # Tokens: the fake's usage (one token per chunk; prompt words + 4 per message), failed call excluded.
    ok_requests = [r for i, r in enumerate(model.requests) if i != 1]
    assert value(m, "threadline_prompt_tokens_total") == sum(
        model._usage(r, [])["prompt_tokens"] for r in ok_requests
    )
    assert value(m, "threadline_completion_tokens_total") == 4 + 2 + 2
    assert value(m, "threadline_refusals_total", reason="rate") == 0


async def test_an_answer_through_response_url_records_its_final_text(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    slack.not_in_channel.add("C9")  # /ask where the bot is not a member: answered privately
    model.script(Reply.text("Privately answered.", delay=0.01))
    await slack.send_command(bot.url, text="where am I?", channel_id="C9")
    key = slack.last_command_response_key
    assert key is not None
    await slack.wait_for(lambda: any("Privately answered." in r["text"] for r in slack.responses_to(key)), 10)

    async def settled() -> bool:
        return value(await scrape(bot), "threadline_answers_total", outcome="ok") == 1

    await eventually(settled)
    m = await scrape(bot)
    assert value(m, "threadline_time_to_first_token_seconds_count") == 1
    assert value(m, "threadline_time_to_final_text_seconds_count") == 1


async def stalled_answer_and_one_waiting(slack: FakeSlack, model: FakeOpenAI, bot: Bot) -> tuple[str, str]:
    """Bob's answer in C1 shows its first word and stalls (until it is stopped); Carol's question in C1
    waits behind it. Returns (Bob's request id, Carol's question ts)."""
    model.script(Reply.text("Streaming slowly on", stall_after=1), Reply.text("Carol's turn."))
    bob = await ask(slack, bot, "C1", "a long one", user="U_BOB")
    await slack.wait_for(lambda: texts(slack, "C1", bob["ts"]) == ["Streaming"], timeout=10)
    carol = await ask(slack, bot, "C1", "and mine", user="U_CAROL")
    # Queued: its 👀 comes right after the enqueue.
    await slack.wait_for(lambda: "eyes" in slack.message("C1", carol["ts"]).reactions, timeout=10)
    return request_id_of(replies(slack, "C1", bob["ts"])[0]), carol["ts"]


async def test_gauges_while_one_answer_streams_and_one_waits(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    bob_rid, carol_ts = await stalled_answer_and_one_waiting(slack, model, bot)
    m = await scrape(bot)
    assert value(m, "threadline_answers_in_flight") == 1
    assert value(m, "threadline_queue_depth") == 1

    await bot.runtime.engine.stop(request_id=bob_rid, user="U_BOB", channel="C1")
    await answered(slack, "C1", carol_ts, ["Carol's turn."])

    async def settled() -> bool:
        m = await scrape(bot)
        return value(m, "threadline_answers_total", outcome="ok") == 1 and (
            value(m, "threadline_answers_total", outcome="stopped") == 1
        )

    await eventually(settled)
    m = await scrape(bot)
    assert value(m, "threadline_answers_in_flight") == 0
    assert value(m, "threadline_queue_depth") == 0


def test_token_usage_is_estimated_when_the_server_reports_none() -> None:
    metrics = Metrics()
    stats = AnswerStats(metrics, origin=0.0)
    stats.usage(None, [{"role": "user", "content": "x" * 40}], produced_chars=21)
    assert stats.estimated and stats.prompt_tokens == 4 + 10 and stats.completion_tokens == 6
    stats.usage(None, [{"role": "user", "content": "lost"}], produced_chars=0)  # failed before answering
    assert stats.total_tokens == 20
    assert metrics.value("threadline_completion_tokens_total") == 6


# -- feedback -------------------------------------------------------------------------------------


def reaction(
    slack: FakeSlack, channel: str, ts: str, name: str, user: str = "U_BOB", *, removed: bool = False
) -> dict[str, Any]:
    return {
        "type": "reaction_removed" if removed else "reaction_added",
        "user": user,
        "reaction": name,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "item_user": slack.bot_user_id,
        "event_ts": ts,
    }


async def test_thumbs_on_answers_are_recorded_with_the_request_id(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.feedback")
    model.script(Reply.text("An answer worth a vote."))
    event = await ask(slack, bot, "C1", "vote on this")
    await answered(slack, "C1", event["ts"], ["An answer worth a vote."])
    answer = replies(slack, "C1", event["ts"])[0]
    rid = request_id_of(answer)

    for name, ts in (
        ("+1", answer.ts),
        ("-1::skin-tone-3", answer.ts),
        ("tada", answer.ts),  # not a vote
        ("+1", event["ts"]),  # the question, not an answer
    ):
        status, _ = await slack.send_event(bot.url, reaction(slack, "C1", ts, name))
        assert status == 200

    async def counted() -> bool:
        m = await scrape(bot)
        # each reaction is handled in its own listener task: wait for both votes
        return value(m, "threadline_feedback_total", vote="down") == 1 and (
            value(m, "threadline_feedback_total", vote="up") == 1
        )

    await eventually(counted)
    m = await scrape(bot)
    assert value(m, "threadline_feedback_total", vote="up") == 1
    assert f"feedback up on request {rid} from U_BOB" in caplog.text
    assert f"feedback down on request {rid} from U_BOB" in caplog.text


async def test_a_vote_counts_once_per_user_and_removing_it_withdraws_it(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.feedback")
    model.script(Reply.text("Vote twice if you like.", words_per_chunk=10))
    event = await ask(slack, bot, "C1", "a question")
    await answered(slack, "C1", event["ts"], ["Vote twice if you like."])
    answer = replies(slack, "C1", event["ts"])[0]
    rid = request_id_of(answer)

    async def react(name: str, *, user: str = "U_BOB", removed: bool = False) -> None:
        payload = reaction(slack, "C1", answer.ts, name, user, removed=removed)
        status, _ = await slack.send_event(bot.url, payload)
        assert status == 200

    async def metric(name: str, vote: str, expected: float) -> None:
        async def reached() -> bool:
            return value(await scrape(bot), name, vote=vote) == expected

        await eventually(reached)

    async def unchanged(times: int) -> None:
        async def logged() -> bool:
            return caplog.text.count(f"feedback up on request {rid} from U_BOB: unchanged") == times

        await eventually(logged)

    await react("+1")
    await metric("threadline_feedback_total", "up", 1)
    await react("+1")  # Slack redelivers it
    await unchanged(1)
    await react("+1::skin-tone-2")  # the same vote, another skin tone
    await unchanged(2)
    await react("+1", removed=True)  # the skin tone still votes
    await unchanged(3)
    await react("+1::skin-tone-2", removed=True)  # the last one: the vote is withdrawn
    await metric("threadline_feedback_removed_total", "up", 1)
    await react("+1")  # cast again: it counts again, so total - removed is the votes standing
    await metric("threadline_feedback_total", "up", 2)
    await react("-1", user="U_CAROL")
    await metric("threadline_feedback_total", "down", 1)
    await react("-1", user="U_CAROL", removed=True)
    await metric("threadline_feedback_removed_total", "down", 1)

    m = await scrape(bot)
    assert (
        value(m, "threadline_feedback_total", vote="up")
        - value(m, "threadline_feedback_removed_total", vote="up")
        == 1
    )
    assert value(m, "threadline_feedback_total", vote="down") == value(
        m, "threadline_feedback_removed_total", vote="down"
    )
    assert f"feedback up on request {rid} withdrawn by U_BOB" in caplog.text
    assert f"feedback down on request {rid} withdrawn by U_CAROL" in caplog.text


# -- access control -------------------------------------------------------------------------------


async def test_allowlists_refuse_politely_without_a_placeholder_or_model_call(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_ALLOWED_CHANNELS="C1", BOT_ALLOWED_USERS="U_ALICE,U_BOB")
    model.script(Reply.text("Allowed here."))

    elsewhere = await ask(slack, bot, "C2", "may I ask here?")
    await answered(slack, "C2", elsewhere["ts"], [policy.CHANNEL_REFUSAL])
    stranger = await ask(slack, bot, "C1", "and me?", user="U_CAROL")
    await answered(slack, "C1", stranger["ts"], [policy.USER_REFUSAL])
    dm = slack.dm_event("D1", "a DM")
    await slack.send_event(bot.url, dm)
    await answered(slack, "D1", dm["ts"], [policy.CHANNEL_REFUSAL])
    await slack.send_command(bot.url, text="a command elsewhere", channel_id="C2")
    key = slack.last_command_response_key
    assert key is not None
    await slack.wait_for(lambda: len(slack.responses_to(key)) == 1)
    [private] = slack.responses_to(key)
    assert (private["response_type"], private["text"]) == ("ephemeral", policy.CHANNEL_REFUSAL)

    allowed = await ask(slack, bot, "C1", "and here?")
    await answered(slack, "C1", allowed["ts"], ["Allowed here."])
    assert len(model.requests) == 1
    # Refusals are replies, never placeholders: only the allowed question got one.
    placeholders = [c for c in slack.calls_to("chat.postMessage") if c.args.get("text") == THINKING_TEXT]
    assert len(placeholders) == 1
    assert len(slack.bot_messages("C2")) == 1  # the mention's refusal; /ask was answered privately
    m = await scrape(bot)
    assert value(m, "threadline_refusals_total", reason="channel") == 3
    assert value(m, "threadline_refusals_total", reason="user") == 1


async def test_dm_can_be_allowed_by_name(slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot) -> None:
    bot = await start_bot(BOT_ALLOWED_CHANNELS="C1,dm")
    model.script(Reply.text("Hello in private."))
    dm = slack.dm_event("D1", "a DM")
    await slack.send_event(bot.url, dm)
    await answered(slack, "D1", dm["ts"], ["Hello in private."])


# -- rate limit and budgets -----------------------------------------------------------------------


async def test_user_rate_limit_says_when_to_ask_again(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_USER_RATE="2/10m")
    model.script(Reply.text("First."), Reply.text("Second."), Reply.text("Bob's."))
    # One channel each (the limit is the user's, across channels), so the channel's post pace never waits.
    first = await ask(slack, bot, "C1", "one")
    await answered(slack, "C1", first["ts"], ["First."])
    second = await ask(slack, bot, "C2", "two")
    await answered(slack, "C2", second["ts"], ["Second."])
    third = await ask(slack, bot, "C3", "three")
    refusal = "You've reached the limit of 2 questions per 10 minutes; you can ask again in 10 minutes."
    await answered(slack, "C3", third["ts"], [refusal])
    bob = await ask(slack, bot, "C4", "mine", user="U_BOB")  # another user has his own limit
    await answered(slack, "C4", bob["ts"], ["Bob's."])

    await slack.send_command(bot.url, text="four", channel_id="C5")
    key = slack.last_command_response_key
    assert key is not None
    await slack.wait_for(lambda: len(slack.responses_to(key)) == 1)
    assert slack.responses_to(key)[0]["text"] == refusal
    assert slack.responses_to(key)[0]["response_type"] == "ephemeral"
    assert len(model.requests) == 3
    assert value(await scrape(bot), "threadline_refusals_total", reason="rate") == 2


async def test_a_busy_channel_costs_no_question_of_the_rate_limit(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_USER_RATE="1/10m", BOT_MAX_QUEUE_PER_CHANNEL="1")
    bob_rid, carol_ts = await stalled_answer_and_one_waiting(slack, model, bot)
    busy = await ask(slack, bot, "C1", "may I?")  # Alice: one answering, one waiting, the line is full
    await answered(slack, "C1", busy["ts"], [BUSY_TEXT])

    await bot.runtime.engine.stop(request_id=bob_rid, user="U_BOB", channel="C1")
    await answered(slack, "C1", carol_ts, ["Carol's turn."])
    model.script(Reply.text("Your turn now."))
    again = await ask(slack, bot, "C1", "may I now?")  # her one question of the window is still hers
    await answered(slack, "C1", again["ts"], ["Your turn now."])
    assert value(await scrape(bot), "threadline_refusals_total", reason="rate") == 0


async def test_daily_token_budgets_per_user_and_per_workspace(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_DAILY_TOKENS_USER="5")
    model.script(Reply.text("Spent."), Reply.text("Bob too."))
    first = await ask(slack, bot, "C1", "use my budget")
    await answered(slack, "C1", first["ts"], ["Spent."])
    again = await ask(slack, bot, "C1", "one more")
    await slack.wait_for(lambda: bool(texts(slack, "C1", again["ts"])))
    [text] = texts(slack, "C1", again["ts"])
    assert text.startswith("You've used your daily allowance of 5 tokens; you can ask again in ")
    assert text.endswith("(at midnight UTC).")
    bob = await ask(slack, bot, "C1", "my turn", user="U_BOB")
    await answered(slack, "C1", bob["ts"], ["Bob too."])
    assert len(model.requests) == 2

    shared = await start_bot(BOT_DAILY_TOKENS_WORKSPACE="1")
    model.script(Reply.text("The last one today."))
    last = await ask(slack, shared, "C2", "first of the day", user="U_CAROL")
    await answered(slack, "C2", last["ts"], ["The last one today."])
    after = await ask(slack, shared, "C2", "anything left?", user="U_DAN")
    await slack.wait_for(lambda: bool(texts(slack, "C2", after["ts"])))
    assert texts(slack, "C2", after["ts"])[0].startswith(
        "This workspace has used its daily allowance of 1 tokens"
    )
    assert len(model.requests) == 3


# -- readiness ------------------------------------------------------------------------------------


async def readyz(bot: Bot) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{bot.base}/readyz") as resp:
        return resp.status, await resp.json()


async def test_readyz_reports_each_dependency(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    status, body = await readyz(bot)
    assert status == 200, body
    assert body == {"ok": True, "checks": {"serving": "ok", "slack": "ok", "model": "ok"}}
    assert not model.requests  # readiness costs no completion

    no_model = await start_bot(OPENAI_BASE_URL="http://127.0.0.1:1/v1")
    status, body = await readyz(no_model)
    assert status == 503
    assert body["checks"]["model"].startswith("ModelUnreachable")
    assert body["checks"]["slack"] == "ok"
    async with aiohttp.ClientSession() as http, http.get(f"{no_model.base}/healthz") as resp:
        assert resp.status == 200  # alive all the same


async def test_readyz_checks_redis_when_configured(
    slack: FakeSlack,
    model: FakeOpenAI,
    start_bot: StartBot,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    redis_server.start()
    bot = await start_bot(REDIS_URL=redis_server.url, BOT_READINESS_INTERVAL_SECONDS="0.05")
    status, body = await readyz(bot)
    assert status == 200 and body["checks"]["redis"] == "ok", body
    assert bot.runtime.limits.__class__.__name__ == "RedisLimitStore"
    redis_server.stop()

    async def redis_is(expected: str) -> bool:  # re-checked in the background (contract/test_readiness.py)
        status, body = await readyz(bot)
        return (status == 200) == (expected == "ok") and (body["checks"]["redis"] == "ok") == (
            expected == "ok"
        )

    try:
        await eventually(lambda: redis_is("down"))
    finally:
        redis_server.start()
    await eventually(lambda: redis_is("ok"))


# -- Socket Mode watchdog -------------------------------------------------------------------------


async def test_watchdog_reconnects_a_silent_socket(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(
        SLACK_APP_TOKEN=slack.app_token, SLACK_SIGNING_SECRET="", BOT_SOCKET_WATCHDOG_SECONDS="0.6"
    )
    assert slack.socket_connections == 1
    status, body = await readyz(bot)
    assert status == 200 and body["checks"]["socket_mode"] == "ok"
    assert value(await scrape(bot), "threadline_socket_reconnects_total", reason="silent") == 0  # on $PORT
    socket = bot.runtime._socket
    assert socket is not None
    # slack_sdk's own monitor dies (the failure the watchdog exists for): no more pings, no pongs.
    monitor = socket.client.current_session_monitor
    assert monitor is not None
    monitor.cancel()
    await slack.wait_for(lambda: slack.socket_connections == 2, timeout=5)
    assert bot.runtime.metrics.value("threadline_socket_reconnects_total", {"reason": "silent"}) == 1

    model.script(Reply.text("Still listening."))
    event = slack.mention_event("C1", "are you there?")
    await slack.wait_ack(await slack.push_event(event))
    await answered(slack, "C1", event["ts"], ["Still listening."])
