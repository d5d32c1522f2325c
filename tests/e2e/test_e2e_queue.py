"""The per-channel queue end to end, over both backends (memory, and Redis with a real redis-server),
then several bot processes sharing one Redis: work spread, kill -9, SIGTERM, Redis restarts, retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.texts import BOT_BUSY_TEXT, BUSY_TEXT
from tests.conftest import Bot, StartBot, bot_env
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack, Message
from tests.procs import BotProcess
from tests.redis_fixtures import redis_client, redis_server  # noqa: F401
from tests.redis_server import RedisServer


def bot_replies(slack: FakeSlack, channel: str, thread_ts: str) -> list[Message]:
    return [m for m in slack.thread(channel, thread_ts) if m.user == slack.bot_user_id]


def answered(slack: FakeSlack, channel: str, thread_ts: str, text: str) -> bool:
    return any(m.text == text for m in bot_replies(slack, channel, thread_ts))


@pytest.fixture(params=["memory", "redis"])
async def backend_bot(
    request: pytest.FixtureRequest,
    start_bot: StartBot,
    redis_server: RedisServer,  # noqa: F811
) -> Callable[..., Awaitable[Bot]]:
    async def start(**env: str) -> Bot:
        if request.param == "redis":
            redis_server.start()
            env["REDIS_URL"] = redis_server.url
            from bot.redis import connect

            client = connect(redis_server.url)
            await client.flushall()
            await client.aclose()
        return await start_bot(**env)

    return start


async def test_one_channel_answers_in_arrival_order(
    slack: FakeSlack, model: FakeOpenAI, backend_bot: Callable[..., Awaitable[Bot]]
) -> None:
    bot = await backend_bot(BOT_POSTS_PER_CHANNEL_BURST="10")
    model.script(*(Reply.text(f"answer {i}", delay=0.02) for i in range(5)))
    events = [slack.mention_event("C1", f"question {i}") for i in range(5)]
    for event in events:  # arrival order = the order Slack delivers them
        await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: all(bot_replies(slack, "C1", e["ts"]) for e in events), 10)
    await model.wait_for(lambda: len(model.finished_at) == 5, 15)
    questions = [r["messages"][-1]["content"] for r in model.requests]
    assert questions == [f"<@U_ALICE>: question {i}" for i in range(5)]  # one at a time, in order
    for started, finished in zip(model.request_times[1:], model.finished_at, strict=False):
        assert started >= finished  # the next starts only when the previous is done
    for i, event in enumerate(events):
        await slack.wait_for(lambda e=event, i=i: answered(slack, "C1", e["ts"], f"answer {i}"), 10)


async def test_waiting_requests_see_their_place_in_line(
    slack: FakeSlack, model: FakeOpenAI, backend_bot: Callable[..., Awaitable[Bot]]
) -> None:
    bot = await backend_bot(BOT_POSTS_PER_CHANNEL_BURST="10")
    model.script(Reply.text("first " * 20, delay=0.03), Reply.text("second"), Reply.text("third"))
    events = [slack.mention_event("C1", f"q{i}") for i in range(3)]
    for event in events:
        await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: all(bot_replies(slack, "C1", e["ts"]) for e in events), 10)
    third = bot_replies(slack, "C1", events[2]["ts"])[0]
    assert third.args["text"] == "_Queued: 2 requests ahead of you…_"
    await slack.wait_for(lambda: answered(slack, "C1", events[2]["ts"], "third"), 15)
    texts = [e.text for e in third.edits]
    assert "_Queued: 1 request ahead of you…_" in texts  # it moved up the line
    assert texts.index("_Queued: 1 request ahead of you…_") < texts.index("third")


async def test_a_full_channel_says_busy_and_queues_nothing(
    slack: FakeSlack, model: FakeOpenAI, backend_bot: Callable[..., Awaitable[Bot]]
) -> None:
    bot = await backend_bot(BOT_MAX_QUEUE_PER_CHANNEL="2", BOT_POSTS_PER_CHANNEL_BURST="10")
    model.script(Reply.text("slow " * 30, delay=0.03), Reply.text("a"), Reply.text("b"))
    events = [slack.mention_event("C1", f"q{i}") for i in range(4)]
    for event in events:
        await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: answered(slack, "C1", events[3]["ts"], BUSY_TEXT), 10)
    await slack.wait_for(lambda: answered(slack, "C1", events[2]["ts"], "b"), 15)
    assert len(model.requests) == 3  # the fourth was never queued


async def test_the_total_bound_says_busy_in_any_channel(
    slack: FakeSlack, model: FakeOpenAI, backend_bot: Callable[..., Awaitable[Bot]]
) -> None:
    """Issue 14 item 9: with BOT_MAX_QUEUED_TOTAL=2 and one answer at a time, a question in a fourth
    channel, while one is answered and two wait, is refused with the busy reply and never queued."""
    bot = await backend_bot(BOT_MAX_QUEUED_TOTAL="2", BOT_MAX_CONCURRENCY="1")
    model.script(Reply.text("slow " * 30, delay=0.03), Reply.text("a"), Reply.text("b"))
    events = [slack.mention_event(f"C{i}", f"q{i}") for i in range(4)]
    for event in events[:3]:
        await slack.send_event(bot.url, event)
        await slack.wait_for(lambda e=event: bool(bot_replies(slack, e["channel"], e["ts"])), 10)
    await model.wait_for(lambda: model.active_streams == 1, 10)
    await slack.send_event(bot.url, events[3])
    await slack.wait_for(lambda: answered(slack, "C3", events[3]["ts"], BOT_BUSY_TEXT), 10)
    await slack.wait_for(lambda: answered(slack, "C2", events[2]["ts"], "b"), 15)
    assert len(model.requests) == 3  # the fourth was never queued


async def test_unrelated_threads_may_run_together_but_one_thread_stays_in_order(
    slack: FakeSlack, model: FakeOpenAI, backend_bot: Callable[..., Awaitable[Bot]]
) -> None:
    bot = await backend_bot(BOT_CHANNEL_CONCURRENCY="2", BOT_POSTS_PER_CHANNEL_BURST="10")
    # Two threads run at once, so which request reaches the model first is not fixed: answer each
    # question by its text.
    replies = {
        "thread a": Reply.text("root a"),
        "thread b": Reply.text("root b"),
        "a follow-up 1": Reply.text("a1 " * 10, delay=0.05),
        "b follow-up 1": Reply.text("b1 " * 10, delay=0.05),
        "a follow-up 2": Reply.text("a2"),
    }
    model.reply_for = lambda body: replies[str(body["messages"][-1]["content"]).split(": ", 1)[1]]  # type: ignore[method-assign]
    a = slack.mention_event("C1", "thread a")
    b = slack.mention_event("C1", "thread b")
    for event in (a, b):
        await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: answered(slack, "C1", a["ts"], "root a") and answered(slack, "C1", b["ts"], "root b")
    )
    follow_a1 = slack.mention_event("C1", "a follow-up 1", thread_ts=a["ts"])
    follow_b1 = slack.mention_event("C1", "b follow-up 1", thread_ts=b["ts"])
    follow_a2 = slack.mention_event("C1", "a follow-up 2", thread_ts=a["ts"])
    for event in (follow_a1, follow_b1, follow_a2):
        await slack.send_event(bot.url, event)
    await model.wait_for(lambda: len(model.requests) == 4, 10)
    await asyncio.sleep(0)
    assert model.active_streams == 2  # two threads at once
    await slack.wait_for(lambda: answered(slack, "C1", a["ts"], "a2"), 15)
    # a2 started only after a1 finished, and saw a1's answer as context
    last = model.requests[-1]["messages"]
    assert last[-1]["content"] == "<@U_ALICE>: a follow-up 2"
    assert last[-2] == {"role": "assistant", "content": ("a1 " * 10)}


# -- several replicas on one Redis ----------------------------------------------------------------


@pytest.fixture
async def replicas(
    slack: FakeSlack,
    model: FakeOpenAI,
    redis_server: RedisServer,  # noqa: F811
) -> AsyncIterator[Callable[..., Awaitable[BotProcess]]]:
    redis_server.start()
    from bot.redis import connect

    client = connect(redis_server.url)
    await client.flushall()
    await client.aclose()
    started: list[BotProcess] = []

    async def start(name: str, **env: str) -> BotProcess:
        proc = BotProcess(
            bot_env(
                slack,
                model,
                REDIS_URL=redis_server.url,
                OPENAI_MODEL=name,
                # A survivor takes a killed replica's job when its lease lapses. Not shorter: a replica
                # starved of CPU for a second (a loaded machine, tests in parallel) keeps a live lease.
                BOT_LEASE_SECONDS="3",
                LOG_LEVEL="INFO",
                **env,
            )
        )
        started.append(proc)
        await proc.start()
        return proc

    yield start
    for proc in started:
        await proc.close()


def served_by(model: FakeOpenAI) -> list[str]:
    return [str(r["model"]) for r in model.requests]


async def start_replicas(
    replicas: Callable[..., Awaitable[BotProcess]], *names: str, **env: str
) -> dict[str, BotProcess]:
    """Start one replica per name, all at once (each start is a Python process importing the bot)."""
    procs = await asyncio.gather(*(replicas(name, **env) for name in names))
    return dict(zip(names, procs, strict=True))


async def test_three_replicas_share_the_work(
    slack: FakeSlack, model: FakeOpenAI, replicas: Callable[..., Awaitable[BotProcess]]
) -> None:
    bots = list(
        (
            await start_replicas(replicas, *(f"replica-{i}" for i in range(3)), BOT_MAX_CONCURRENCY="2")
        ).values()
    )
    model.default_reply = Reply.text("shared answer", delay=0.1)
    events = [slack.mention_event(f"C{i}", "hello") for i in range(9)]
    # Every event reaches one replica (Slack delivers to whichever it likes); the queue spreads the
    # answers over all of them.
    await asyncio.gather(*(slack.send_event(bots[0].url, e) for e in events))
    for e in events:
        await slack.wait_for(lambda e=e: answered(slack, e["channel"], e["ts"], "shared answer"), 15)
    assert len(model.requests) == 9
    assert len(set(served_by(model))) == 3  # the work spread over every replica
    assert model.peak_streams <= 6  # BOT_MAX_CONCURRENCY per replica


async def test_max_concurrency_bounds_the_answers_of_one_process(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_MAX_CONCURRENCY="2")
    model.default_reply = Reply.text("bounded " * 5, delay=0.05)
    events = [slack.mention_event(f"C{i}", "hello") for i in range(6)]
    await asyncio.gather(*(slack.send_event(bot.url, e) for e in events))
    for e in events:
        await slack.wait_for(lambda e=e: answered(slack, e["channel"], e["ts"], "bounded " * 5), 15)
    assert model.peak_streams == 2


async def test_one_channel_keeps_its_order_across_replicas(
    slack: FakeSlack, model: FakeOpenAI, replicas: Callable[..., Awaitable[BotProcess]]
) -> None:
    bots = list((await start_replicas(replicas, "a", "b", BOT_POSTS_PER_CHANNEL_BURST="10")).values())
    model.script(*(Reply.text(f"answer {i}", delay=0.05) for i in range(4)))
    events = [slack.mention_event("C1", f"question {i}") for i in range(4)]
    for i, event in enumerate(events):  # alternately to each replica, each queued before the next
        await slack.send_event(bots[i % 2].url, event)
        await slack.wait_for(
            lambda e=event: any(
                c.ok and c.args.get("timestamp") == e["ts"] for c in slack.calls_to("reactions.add")
            ),
            10,
        )
    for i, event in enumerate(events):
        await slack.wait_for(lambda e=event, i=i: answered(slack, "C1", e["ts"], f"answer {i}"), 15)
    questions = [r["messages"][-1]["content"] for r in model.requests]
    assert questions == [f"<@U_ALICE>: question {i}" for i in range(4)]
    for started, finished in zip(model.request_times[1:], model.finished_at, strict=False):
        assert started >= finished  # one at a time, whichever replica answers
    assert model.peak_streams == 1


async def test_a_retried_event_delivered_to_two_replicas_is_answered_once(
    slack: FakeSlack, model: FakeOpenAI, replicas: Callable[..., Awaitable[BotProcess]]
) -> None:
    a, b = (await start_replicas(replicas, "a", "b")).values()
    model.default_reply = Reply.text("once", delay=0.05)
    event = slack.mention_event("C1", "hi")
    await asyncio.gather(
        slack.send_event(a.url, event, event_id="EvTWICE"),
        slack.send_event(b.url, event, event_id="EvTWICE", retry_num=1),
    )
    await slack.wait_for(lambda: answered(slack, "C1", event["ts"], "once"), 10)
    # Counted, not waited out: both replicas share C1's line, so a question asked now is answered
    # after a second answer would have been.
    marker = slack.mention_event("C1", "marker")
    await slack.send_event(b.url, marker)
    await slack.wait_for(lambda: answered(slack, "C1", marker["ts"], "once"), 10)
    assert len(model.requests) == 2 and len(bot_replies(slack, "C1", event["ts"])) == 1


async def _stream_started_on(model: FakeOpenAI, procs: dict[str, BotProcess]) -> BotProcess:
    await model.wait_for(lambda: model.active_streams == 1 and len(model.requests) == 1, 10)
    return procs[str(model.requests[0]["model"])]


async def test_kill_9_mid_answer_is_completed_by_another_replica(
    slack: FakeSlack, model: FakeOpenAI, replicas: Callable[..., Awaitable[BotProcess]]
) -> None:
    procs = await start_replicas(replicas, "a", "b")
    answer = " ".join(f"word{i}" for i in range(60))
    model.script(Reply.text(answer, delay=0.05), Reply.text(answer, delay=0.01))
    event = slack.mention_event("C1", "a long answer please")
    await slack.send_event(procs["a"].url, event)
    victim = await _stream_started_on(model, procs)
    await slack.wait_for(
        lambda: "word3" in "".join(m.text for m in bot_replies(slack, "C1", event["ts"])), 10
    )
    victim.kill()
    await slack.wait_for(lambda: answered(slack, "C1", event["ts"], answer), 20)
    replies = bot_replies(slack, "C1", event["ts"])
    assert len(replies) == 1  # the same placeholder was completed
    assert any("resuming" in e.text for e in replies[0].edits)
    assert len(model.requests) == 2 and model.requests[1]["model"] != model.requests[0]["model"]


async def test_a_resumed_long_answer_reuses_the_messages_already_posted(
    slack: FakeSlack, model: FakeOpenAI, replicas: Callable[..., Awaitable[BotProcess]]
) -> None:
    from bot.render import to_mrkdwn
    from bot.split import split_message

    procs = await start_replicas(replicas, "a", "b")
    answer = " ".join(f"word{i}" for i in range(1200))  # about 9,000 characters: three messages
    model.script(Reply.text(answer, words_per_chunk=20, delay=0.05), Reply.text(answer, words_per_chunk=50))
    event = slack.mention_event("C1", "a very long answer please")
    await slack.send_event(procs["a"].url, event)
    victim = await _stream_started_on(model, procs)
    await slack.wait_for(lambda: len(bot_replies(slack, "C1", event["ts"])) >= 2, 15)
    victim.kill()  # after it posted a continuation message
    expected = split_message(to_mrkdwn(answer))
    assert len(expected) >= 3
    await slack.wait_for(lambda: [m.text for m in bot_replies(slack, "C1", event["ts"])] == expected, 20)
    # No second copy of a piece: the continuation the dead replica posted was reused. The only other
    # message allowed is a second placeholder deleted at once: under load a worker may post one while
    # the intake's waits for its claim, and the loser deletes its own (bot/placeholders.py).
    thread = slack.thread("C1", event["ts"], include_deleted=True)[1:]
    pieces = [m.args["metadata"]["event_payload"]["piece"] for m in thread if m.args.get("metadata")]
    assert len(pieces) == len(thread)  # every message the bot posted is a piece of this answer
    kept = [piece for m, piece in zip(thread, pieces, strict=True) if not (m.deleted and piece == 0)]
    assert kept == list(range(len(expected))), [(m.ts, m.deleted, m.text[:30]) for m in thread]


async def test_sigterm_hands_the_job_back(
    slack: FakeSlack, model: FakeOpenAI, replicas: Callable[..., Awaitable[BotProcess]]
) -> None:
    procs = await start_replicas(replicas, "a", "b", BOT_SHUTDOWN_GRACE_SECONDS="0.5")
    answer = " ".join(f"word{i}" for i in range(80))
    model.script(Reply.text(answer, delay=0.05), Reply.text(answer, delay=0.01))
    event = slack.mention_event("C1", "long")
    await slack.send_event(procs["a"].url, event)
    leaving = await _stream_started_on(model, procs)
    assert await leaving.terminate() == 0  # graceful exit after the grace period
    await slack.wait_for(lambda: answered(slack, "C1", event["ts"], answer), 20)
    assert len(bot_replies(slack, "C1", event["ts"])) == 1


async def test_redis_restart_loses_nothing_queued(
    slack: FakeSlack,
    model: FakeOpenAI,
    replicas: Callable[..., Awaitable[BotProcess]],
    redis_server: RedisServer,  # noqa: F811
) -> None:
    bot = await replicas("solo", BOT_POSTS_PER_CHANNEL_BURST="10")
    model.default_reply = Reply.text("an answer")
    model.script(Reply.text("an answer " * 40, delay=0.05))
    events = [slack.mention_event("C1", f"q{i}") for i in range(3)]
    for event in events:
        await slack.send_event(bot.url, event)

    # 👀 is added only once a question is in the queue (its placeholder is posted before): wait for all
    # three, or Redis could stop between a placeholder and its enqueue.
    def reacted(ts: str) -> bool:
        return any(c.ok and c.args.get("timestamp") == ts for c in slack.calls_to("reactions.add"))

    await slack.wait_for(lambda: all(reacted(e["ts"]) for e in events), 10)
    redis_server.stop()
    down = slack.mention_event("C2", "while redis is down")
    status, _ = await slack.send_event(bot.url, down)
    assert status == 200  # Slack is still acked
    await slack.wait_for(
        lambda: any("queue is unavailable" in m.text for m in bot_replies(slack, "C2", down["ts"])), 15
    )
    redis_server.start()
    # Every queued request is still answered (the one in progress may be resumed if its lease
    # lapsed while Redis was away).
    for event in events:
        await slack.wait_for(lambda e=event: answered(slack, "C1", e["ts"], "an answer"), 30)


async def test_stop_pressed_on_another_replica_reaches_the_stream(
    slack: FakeSlack, model: FakeOpenAI, replicas: Callable[..., Awaitable[BotProcess]]
) -> None:
    procs = await start_replicas(replicas, "a", "b")
    model.script(Reply.text(" ".join(f"w{i}" for i in range(300)), delay=0.03))
    event = slack.mention_event("C1", "long", user="U_ALICE")
    await slack.send_event(procs["a"].url, event)
    streaming = await _stream_started_on(model, procs)
    other = next(p for p in procs.values() if p is not streaming)
    await slack.wait_for(lambda: any(m.blocks for m in bot_replies(slack, "C1", event["ts"])), 10)
    message = bot_replies(slack, "C1", event["ts"])[0]
    element = next(e for b in message.blocks or [] for e in b.get("elements", []) if e.get("action_id"))
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U_ALICE"},
        "channel": {"id": "C1"},
        "container": {"type": "message", "message_ts": message.ts, "channel_id": "C1"},
        "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
        "actions": [element],
        "trigger_id": "1.2.3",
    }
    await slack.send_action(other.url, payload)
    await slack.wait_for(lambda: "Stopped by <@U_ALICE>" in bot_replies(slack, "C1", event["ts"])[0].text, 10)


async def test_a_queued_placeholder_becomes_the_thinking_indicator_when_its_turn_comes(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_POSTS_PER_CHANNEL_BURST="10")
    # The second answer's model is slow to its first token: its placeholder must not keep saying
    # "Queued" while it is being written.
    model.script(Reply.text("first " * 10, delay=0.05), Reply.text("second", first_delay=1.5))
    events = [slack.mention_event("C1", f"q{i}") for i in range(2)]
    for event in events:
        await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: answered(slack, "C1", events[1]["ts"], "second"), 15)
    second = bot_replies(slack, "C1", events[1]["ts"])[0]
    shown = [second.args["text"], *(e.text for e in second.edits)]
    assert shown == ["_Queued: 1 request ahead of you…_", "_Thinking…_", "second"]


async def test_a_quick_answer_replaces_the_queue_notice_without_a_thinking_edit(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_POSTS_PER_CHANNEL_BURST="10")
    model.script(Reply.text("first " * 10, delay=0.05), Reply.text("second"))
    events = [slack.mention_event("C1", f"q{i}") for i in range(2)]
    for event in events:
        await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: answered(slack, "C1", events[1]["ts"], "second"), 15)
    second = bot_replies(slack, "C1", events[1]["ts"])[0]
    assert [e.text for e in second.edits] == ["second"]  # the first words replace the notice


async def _one_streaming_one_waiting(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> tuple[Bot, list[dict[str, Any]]]:
    """A bot on the memory queue with one long answer streaming and one question waiting in C1."""
    bot = await start_bot(BOT_POSTS_PER_CHANNEL_BURST="10")
    model.script(Reply.text(" ".join(f"w{i}" for i in range(200)), delay=0.05))
    events = [slack.mention_event("C1", f"q{i}") for i in range(2)]
    for event in events:
        await slack.send_event(bot.url, event)
    await model.wait_for(lambda: model.active_streams == 1, 10)
    return bot, events


async def test_shutdown_with_the_memory_queue_tells_every_unanswered_asker(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot, events = await _one_streaming_one_waiting(slack, model, start_bot)
    stopping = asyncio.create_task(bot.runtime.stop(grace=0.3))
    await asyncio.sleep(0.05)
    # A question arriving while the process shuts down is refused (Slack retries it), not queued
    # where nothing would ever answer it.
    late = slack.mention_event("C2", "too late")
    status, _ = await slack.send_event(bot.url, late)
    assert status == 503
    # Slack does not retry a slash command: it is told at once, privately
    status, body = await slack.send_command(bot.url, text="also too late", channel_id="C3")
    assert status == 200 and "restarting" in str(body)
    await stopping
    for event in events:  # the answer cut off and the one still waiting both say so
        replies = bot_replies(slack, "C1", event["ts"])
        assert len(replies) == 1 and "restarted before I could answer" in replies[0].text
        assert not replies[0].blocks  # no Stop button left behind
    assert not bot_replies(slack, "C2", late["ts"])


async def test_a_note_the_placeholder_will_not_take_is_posted_in_the_thread(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot, events = await _one_streaming_one_waiting(slack, model, start_bot)
    slack.fail("chat.update", status=200, error="message_not_found", times=1000)  # placeholders deleted
    await bot.runtime.stop(grace=0.3)
    waiting = bot_replies(slack, "C1", events[1]["ts"])
    # the queued question's placeholder could not be edited: the note came as a reply instead
    assert [m.text for m in waiting][-1].endswith("Please ask again.")
    assert len(waiting) == 2


async def test_kill_9_mid_answer_keeps_the_channel_in_order(
    slack: FakeSlack, model: FakeOpenAI, replicas: Callable[..., Awaitable[BotProcess]]
) -> None:
    """Issue 14 item 2: q0 is being answered by the replica that dies (SIGKILL); q1..q3 wait. When
    q0's lease lapses it goes back to the head of the line: the answers land q0, q1, q2, q3."""
    procs = await start_replicas(replicas, "a", "b", BOT_POSTS_PER_CHANNEL_BURST="10")
    answers = {f"question {i}": f"answer {i}" for i in range(1, 4)}
    long_answer = " ".join(f"word{i}" for i in range(80))

    def reply_for(body: dict[str, Any]) -> Reply:
        question = str(body["messages"][-1]["content"]).split(": ", 1)[1]
        if question == "question 0":
            return Reply.text(long_answer, delay=0.05)
        return Reply.text(answers[question], delay=0.02)

    model.reply_for = reply_for  # type: ignore[method-assign]
    events = [slack.mention_event("C1", f"question {i}") for i in range(4)]
    for i, event in enumerate(events):  # alternately to each replica, each queued before the next
        await slack.send_event(procs["ab"[i % 2]].url, event)
        await slack.wait_for(
            lambda e=event: any(
                c.ok and c.args.get("timestamp") == e["ts"] for c in slack.calls_to("reactions.add")
            ),
            10,
        )
    victim = await _stream_started_on(model, procs)
    await slack.wait_for(
        lambda: "word3" in "".join(m.text for m in bot_replies(slack, "C1", events[0]["ts"])), 10
    )
    victim.kill()
    await slack.wait_for(lambda: answered(slack, "C1", events[0]["ts"], long_answer), 20)
    for i, event in enumerate(events[1:], start=1):
        await slack.wait_for(lambda e=event, i=i: answered(slack, "C1", e["ts"], f"answer {i}"), 20)
    questions = [str(r["messages"][-1]["content"]).split(": ", 1)[1] for r in model.requests]
    assert questions == ["question 0", "question 0", "question 1", "question 2", "question 3"]
    # the answers landed in channel order: each final text after the previous one's
    finals = [long_answer, *(f"answer {i}" for i in range(1, 4))]
    landed = [
        min(edit.at for m in bot_replies(slack, "C1", e["ts"]) for edit in m.edits if edit.text == text)
        for e, text in zip(events, finals, strict=True)
    ]
    assert landed == sorted(landed), landed
