"""End to end: native streams at Slack's limits. A stream Slack ends early, answers longer than a
streamed message holds (fences closed and reopened), the rollover before a stream's lifetime ends, a
retried answer that replaces a streamed one, and the stream budgets shared by two replicas in Redis.
In every case the thread ends with exactly the answer: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from bot.redis import connect
from bot.view.markdown import neutralise
from tests.conftest import StartBot
from tests.e2e.test_e2e_native import answers, finished, has_feedback, shown
from tests.e2e.test_e2e_queue import replicas, start_replicas  # noqa: F401
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.procs import BotProcess
from tests.redis_fixtures import redis_server  # noqa: F401
from tests.redis_server import RedisServer

FENCE_LINE = re.compile(r"^```[a-z]*\n", re.MULTILINE)


def joined(texts: list[str]) -> str:
    """The messages' texts as one answer: a fence closed at the end of one message and reopened at
    the start of the next is one fence."""
    out = texts[0]
    for text in texts[1:]:
        reopened = FENCE_LINE.match(text)
        if reopened and out.endswith("\n```"):
            out = out[: -len("```")] + text[reopened.end() :]
        else:
            out += text
    return out


async def test_a_stream_slack_ends_early_continues_in_a_new_message(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="native", BOT_STREAM_APPEND_INTERVAL_SECONDS="0.1")
    text = " ".join(f"w{i}" for i in range(120))
    model.script(Reply.text(text, delay=0.01))
    event = slack.mention_event("C1", "q")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: any("w20 " in m.text for m in slack.streams("C1")), 10)
    first = slack.streams("C1")[0]
    slack.expire_stream("C1", first.ts)  # Slack's lifetime is over
    replies = await finished(slack, "C1", event["ts"])
    assert len(replies) >= 2
    assert joined([shown(m) for m in replies]) == text
    assert has_feedback(replies[-1])
    assert not [c for c in slack.calls if c.status == 429]


async def test_the_last_stream_ended_early_is_finished_by_an_edit(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="native", BOT_STREAM_APPEND_INTERVAL_SECONDS="0.05")
    text = " ".join(f"w{i}" for i in range(10))
    model.script(Reply.text(text, delay=0.4))
    event = slack.mention_event("C1", "q")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: any(m.text.endswith("w8 ") for m in slack.streams("C1")), 10)
    slack.expire_stream("C1", slack.streams("C1")[0].ts)  # just before the last word comes
    replies = await finished(slack, "C1", event["ts"])
    assert [shown(m) for m in replies] == [text]
    assert has_feedback(replies[0])  # the edit that finished it carries the buttons
    assert len(slack.calls_to("chat.update")) == 1


async def test_a_30000_character_answer_rolls_over_at_safe_points(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="native", BOT_STREAM_APPEND_INTERVAL_SECONDS="0.05")
    paragraphs = [f"Paragraph {i}: " + " ".join(f"p{i}w{j}" for j in range(60)) for i in range(40)]
    code = (
        "```python\n" + "\n".join(f"print({i})  # line {i} of a long listing" for i in range(400)) + "\n```"
    )
    text = "\n\n".join([*paragraphs[:20], code, *paragraphs[20:], "Say hi to @here."])
    assert len(text) > 30_000
    model.script(Reply.text(text, words_per_chunk=40, delay=0.001))
    event = slack.mention_event("C1", "a long one")
    await slack.send_event(bot.url, event)
    replies = await finished(slack, "C1", event["ts"], timeout=60)
    texts = [shown(m) for m in replies]
    assert len(texts) >= 3 and all(len(t) <= 11_000 for t in texts)
    assert joined(texts) == neutralise(text)
    for t in texts:  # each message's fences balance: Slack renders each on its own
        assert len(FENCE_LINE.findall(t + "\n")) % 2 == 0 or t.count("```") % 2 == 0
    assert all(not m.streaming for m in replies) and has_feedback(replies[-1])
    assert not [c for c in slack.calls if not c.ok and c.method.startswith("chat.")]


async def test_a_stream_rolls_over_before_slack_ends_it(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    slack.stream_lifetime = 1.5
    bot = await start_bot(
        BOT_TRANSPORT="native",
        BOT_STREAM_APPEND_INTERVAL_SECONDS="0.1",
        BOT_STREAM_ROLLOVER_SECONDS="0.5",
    )
    lines = [f"line {i} of the answer" for i in range(60)]
    text = "\n".join(lines)
    model.script(Reply.text(text, delay=0.01))
    event = slack.mention_event("C1", "q")
    await slack.send_event(bot.url, event)
    replies = await finished(slack, "C1", event["ts"], timeout=20)
    assert len(replies) >= 3
    assert "".join(shown(m) for m in replies) == text
    assert all(m.stream is not None and m.stream.state == "completed" for m in replies)  # none expired
    assert not [c for c in slack.calls if c.response.get("error") == "message_not_in_streaming_state"]


async def test_a_retried_answer_replaces_what_was_streamed(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(
        BOT_TRANSPORT="native", BOT_MAX_ATTEMPTS="2", BOT_STREAM_APPEND_INTERVAL_SECONDS="0.05"
    )
    model.script(
        Reply.text("A first try that breaks " * 10, delay=0.01, cut_after=30),
        Reply.text("The whole second answer.", delay=0.01),
    )
    event = slack.mention_event("C1", "q")
    await slack.send_event(bot.url, event)
    replies = await finished(slack, "C1", event["ts"])
    assert [shown(m) for m in replies] == ["The whole second answer."]
    first = slack.streams("C1")[0]
    assert first.deleted  # the broken try is gone from the thread
    assert any(c.get("type") == "task_update" for c in first.stream.chunks)  # it showed the retry


async def test_a_queue_notice_gives_way_to_the_status(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="native")
    model.script(Reply.text("First.", first_delay=0.5), Reply.text("Second.", first_delay=0.5))
    one = slack.mention_event("C1", "one")
    await slack.send_event(bot.url, one)
    two = slack.mention_event("C1", "two")  # waits for the first, in its own thread
    await slack.send_event(bot.url, two)
    await slack.wait_for(lambda: any("Queued" in m.text for m in answers(slack, "C1", two["ts"])), 10)
    assert [shown(m) for m in await finished(slack, "C1", one["ts"])] == ["First."]
    assert [shown(m) for m in await finished(slack, "C1", two["ts"])] == ["Second."]
    statuses = [s.status for s in slack.status_history("C1", two["ts"])]
    assert statuses[0] == "is thinking…"


async def test_two_replicas_share_the_stream_budgets(
    slack: FakeSlack,
    model: FakeOpenAI,
    start_bot: StartBot,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    redis_server.start()
    env = {
        "BOT_TRANSPORT": "auto",
        "REDIS_URL": redis_server.url,
        "BOT_STREAM_STARTS_PER_MINUTE": "3",
        "BOT_STREAM_STOPS_PER_MINUTE": "3",
    }
    client = connect(redis_server.url)
    await client.flushall()
    await client.aclose()
    one, two = await start_bot(**env), await start_bot(**env)
    texts = {f"C{i}": f"Answer {i} " + " ".join(f"c{i}w{j}" for j in range(20)) for i in range(8)}
    model.reply_for = lambda body: Reply.text(  # type: ignore[method-assign]
        texts[str(body["messages"][-1]["content"]).rsplit(" ", 1)[-1]], delay=0.02
    )
    events = {channel: slack.mention_event(channel, f"go {channel}") for channel in texts}
    await asyncio.gather(
        *(slack.send_event((one if i % 2 else two).url, e) for i, e in enumerate(events.values()))
    )
    for channel, event in events.items():
        replies = await finished(slack, channel, event["ts"], timeout=20)
        assert [shown(m) for m in replies] == [texts[channel]]
    starts = slack.calls_to("chat.startStream")
    assert len(starts) == 3  # three native answers across both replicas; the others were edited
    assert len(slack.calls_to("chat.stopStream")) == 3
    edited = [c for c in texts if not slack.streams(c)]
    assert len(edited) == 5
    assert not [c for c in slack.calls if c.status == 429]


async def test_a_native_answer_whose_replica_dies_is_shown_once(
    slack: FakeSlack,
    model: FakeOpenAI,
    replicas: Callable[..., Awaitable[BotProcess]],  # noqa: F811
) -> None:
    procs = await start_replicas(replicas, "a", "b", BOT_TRANSPORT="native")
    answer = " ".join(f"word{i}" for i in range(60))
    model.script(Reply.text(answer, delay=0.05), Reply.text(answer, delay=0.01))
    event = slack.mention_event("C1", "a long answer please")
    await slack.send_event(procs["a"].url, event)
    await model.wait_for(lambda: model.active_streams == 1 and len(model.requests) == 1, 10)
    victim = procs[str(model.requests[0]["model"])]
    await slack.wait_for(lambda: any("word3" in m.text for m in slack.streams("C1")), 10)
    victim.kill()  # mid-stream: its stream stays live in Slack
    await slack.wait_for(lambda: [m.text for m in answers(slack, "C1", event["ts"])] == [answer], 20)
    (stream,) = slack.streams("C1")
    assert stream.deleted  # the dead replica's partial stream is gone: the answer is shown once


async def test_an_append_whose_answer_was_lost_is_never_shown_twice(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="native", BOT_STREAM_APPEND_INTERVAL_SECONDS="0.05")
    text = " ".join(f"w{i}" for i in range(60))
    slack.fail("chat.appendStream", status=500, apply=True)  # the first append lands, its answer is lost
    model.script(Reply.text(text, delay=0.01))
    event = slack.mention_event("C1", "q")
    await slack.send_event(bot.url, event)
    replies = await finished(slack, "C1", event["ts"])
    assert "".join(shown(m) for m in replies) == text  # each word once
    assert has_feedback(replies[-1])


async def test_a_429_pauses_that_method_only(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="native", BOT_STREAM_APPEND_INTERVAL_SECONDS="0.05")
    text = " ".join(f"w{i}" for i in range(80))
    slack.fail("chat.appendStream", status=429, retry_after=1.0)
    model.script(Reply.text(text, delay=0.02), Reply.text("Other answer.", delay=0.01))
    event = slack.mention_event("C1", "q")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: any(c.status == 429 for c in slack.calls_to("chat.appendStream")), 10)
    other = slack.mention_event("C2", "another")  # its start and stop are not held by the appends' pause
    await slack.send_event(bot.url, other)
    replies = await finished(slack, "C1", event["ts"])
    assert "".join(shown(m) for m in replies) == text
    assert [shown(m) for m in await finished(slack, "C2", other["ts"])] == ["Other answer."]
    appends = slack.calls_to("chat.appendStream")
    limited = next(c for c in appends if c.status == 429)
    assert not [c for c in appends if limited.at < c.at < limited.at + 0.95]  # the pause held
    starts = [c for c in slack.calls_to("chat.startStream") if c.args["channel"] == "C2"]
    assert starts[0].at < limited.at + 0.9  # another method: not held by it
