"""Issue 14, items 1, 10, 11: a question is durable from the ack on; Slack failing transiently keeps it."""

from __future__ import annotations

from tests.conftest import StartBot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack, Message


def bot_replies(slack: FakeSlack, channel: str, thread_ts: str) -> list[Message]:
    return [m for m in slack.thread(channel, thread_ts) if m.user == slack.bot_user_id]


async def test_post_failing_for_a_while_keeps_the_question_and_answers_it(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_MAX_ATTEMPTS="2")
    # The intake's two attempts and the worker's first two fail: the job is tried again later.
    slack.fail("chat.postMessage", status=500, times=5)
    model.script(Reply.text("Still here."))
    event = slack.mention_event("C1", "are you there?")
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: [m.text for m in bot_replies(slack, "C1", event["ts"])] == ["Still here."], 15
    )
    assert not slack.calls_to("chat.postEphemeral")  # no untrue "I couldn't post in this channel"


async def test_a_post_whose_answer_was_lost_leaves_no_stray_placeholder(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_MAX_ATTEMPTS="3")
    # Three 500s; only the last one took effect. It is found by its metadata, not posted again.
    slack.fail("chat.postMessage", status=500, times=2)
    slack.fail("chat.postMessage", status=500, times=1, apply=True)
    model.script(Reply.text("One message."))
    event = slack.mention_event("C1", "hello")
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: [m.text for m in bot_replies(slack, "C1", event["ts"])] == ["One message."], 15
    )
    assert len(bot_replies(slack, "C1", event["ts"])) == 1


async def test_the_question_is_queued_before_its_placeholder_is_posted(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    model.script(Reply.text("Queued first."))
    event = slack.mention_event("C1", "order?")
    seen: list[int] = []
    original = bot.runtime.queue.enqueue

    async def enqueue(**kwargs):  # type: ignore[no-untyped-def]
        seen.append(len(slack.calls_to("chat.postMessage")))
        return await original(**kwargs)

    bot.runtime.queue.enqueue = enqueue  # type: ignore[method-assign]
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: [m.text for m in bot_replies(slack, "C1", event["ts"])] == ["Queued first."], 10
    )
    assert seen == [0]  # nothing was posted when the job was queued
