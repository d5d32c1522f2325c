"""End to end: the Stop and Retry buttons, status reactions, and Slack failing under the bot."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from bot.blocks import RETRY_ACTION, STOP_ACTION
from tests.conftest import Bot, StartBot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack, Message


def bot_replies(slack: FakeSlack, channel: str, thread_ts: str) -> list[Message]:
    return [m for m in slack.thread(channel, thread_ts) if m.user == slack.bot_user_id]


def button(message: Message, action_id: str) -> dict[str, Any] | None:
    for block in message.blocks or []:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return dict(element)
    return None


def press(slack: FakeSlack, message: Message, action_id: str, user: str) -> dict[str, Any]:
    element = button(message, action_id)
    assert element is not None, f"no {action_id} button on {message.text!r}"
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": slack.team_id},
        "channel": {"id": message.channel, "name": "general"},
        "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel},
        "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks, "user": message.user},
        "actions": [{**element, "block_id": "threadline_actions", "action_ts": "1.0"}],
        "trigger_id": "1.2.3",
        "response_url": slack.response_url("action"),
    }


async def start_long_answer(slack: FakeSlack, model: FakeOpenAI, bot: Bot) -> tuple[str, Message]:
    model.script(Reply.text(" ".join(f"w{i}" for i in range(400)), delay=0.02))
    event = slack.mention_event("C1", "tell me a long story", user="U_ALICE")
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: any(button(m, STOP_ACTION) and "w3" in m.text for m in bot_replies(slack, "C1", event["ts"])),
        10,
    )
    return str(event["ts"]), bot_replies(slack, "C1", event["ts"])[0]


async def test_stop_keeps_what_was_written_and_removes_the_button(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    ts, message = await start_long_answer(slack, model, bot)
    assert message.blocks and message.blocks[0]["text"]["verbatim"] is True  # the answer is in the blocks
    status, _ = await slack.send_action(bot.url, press(slack, message, STOP_ACTION, "U_ALICE"))
    assert status == 200
    await slack.wait_for(lambda: "Stopped by <@U_ALICE>" in bot_replies(slack, "C1", ts)[0].text, 5)
    final = bot_replies(slack, "C1", ts)[0]
    assert final.text.startswith("w0 w1 w2 w3")
    assert "w399" not in final.text
    assert button(final, STOP_ACTION) is None and button(final, RETRY_ACTION) is None
    await model.wait_for(lambda: model.abandoned_streams >= 1)  # the generation was cancelled
    edits = len(final.edits)
    await slack.wait_for(lambda: bool(slack.calls_to("reactions.add")), 5)
    assert len(bot_replies(slack, "C1", ts)[0].edits) == edits  # nothing more arrives after the stop


async def test_only_the_asker_or_an_admin_can_stop(slack: FakeSlack, model: FakeOpenAI, bot: Bot) -> None:
    ts, message = await start_long_answer(slack, model, bot)
    slack.add_user("U_MALLORY", "mallory")
    await slack.send_action(bot.url, press(slack, message, STOP_ACTION, "U_MALLORY"))
    await slack.wait_for(lambda: bool(slack.ephemerals(user="U_MALLORY")), 5)
    assert "Only <@U_ALICE>" in slack.ephemerals(user="U_MALLORY")[0].text
    assert "Stopped" not in bot_replies(slack, "C1", ts)[0].text
    slack.add_user("U_ADMIN", "admin", is_admin=True)
    await slack.send_action(bot.url, press(slack, message, STOP_ACTION, "U_ADMIN"))
    await slack.wait_for(lambda: "Stopped by <@U_ADMIN>" in bot_replies(slack, "C1", ts)[0].text, 5)


async def failed_question(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> tuple[Bot, dict[str, Any]]:
    """A bot, and a question of C1 its model failed (one attempt, 503): answered with a Retry button."""
    bot = await start_bot(BOT_MAX_ATTEMPTS="1")
    model.script(Reply(chunks=[], status=503))
    event = slack.mention_event("C1", "what is 6 times 7?")
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: any(button(m, RETRY_ACTION) for m in bot_replies(slack, "C1", event["ts"])), 10
    )
    return bot, event


async def test_failed_answer_has_a_retry_button_that_requeues(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot, event = await failed_question(slack, model, start_bot)
    failed = bot_replies(slack, "C1", event["ts"])[0]
    assert "overloaded" in failed.text
    model.script(Reply.text("42."))
    # A double click: two deliveries of the press before the button disappears re-queue once.
    await asyncio.gather(
        slack.send_action(bot.url, press(slack, failed, RETRY_ACTION, "U_ALICE")),
        slack.send_action(bot.url, press(slack, failed, RETRY_ACTION, "U_ALICE")),
    )
    await slack.wait_for(lambda: [m.text for m in bot_replies(slack, "C1", event["ts"])][-1:] == ["42."], 10)
    replies = bot_replies(slack, "C1", event["ts"])
    assert len(replies) == 2  # a new answer in the same thread
    assert button(replies[0], RETRY_ACTION) is None  # the Retry button is gone once pressed
    assert "overloaded" in replies[0].text
    assert model.requests[-1]["messages"][-1]["content"] == "<@U_ALICE>: what is 6 times 7?"
    # Counted, not waited out: a question asked now in C1 is answered after a second re-queue would be.
    model.script(Reply.text("Marker."))
    marker = slack.mention_event("C1", "marker")
    await slack.send_event(bot.url, marker)
    await slack.wait_for(lambda: [m.text for m in bot_replies(slack, "C1", marker["ts"])] == ["Marker."], 10)
    assert len(model.requests) == 3 and len(bot_replies(slack, "C1", event["ts"])) == 2


async def test_status_reactions(slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot) -> None:
    bot = await start_bot(BOT_MAX_ATTEMPTS="1")
    model.script(Reply.text("fine", delay=0.05), Reply(chunks=[], status=503))
    ok = slack.mention_event("C1", "works?")
    await slack.send_event(bot.url, ok)
    await slack.wait_for(lambda: slack.message("C1", ok["ts"]).reactions.get("white_check_mark"), 10)
    assert not slack.message("C1", ok["ts"]).reactions.get("eyes")
    assert [c.args["name"] for c in slack.calls_to("reactions.add")][:1] == ["eyes"]
    bad = slack.mention_event("C2", "fails?")
    await slack.send_event(bot.url, bad)
    await slack.wait_for(lambda: slack.message("C2", bad["ts"]).reactions.get("warning"), 10)


async def test_status_reactions_can_be_turned_off(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_STATUS_REACTIONS="false")
    event = slack.mention_event("C1", "quiet please")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: bot_replies(slack, "C1", event["ts"])[-1:] != [], 10)
    await model.wait_for(lambda: len(model.finished_at) == 1)
    await slack.wait_for(lambda: not bot_replies(slack, "C1", event["ts"])[0].text.startswith("_"), 10)
    assert not slack.calls_to("reactions.add")


async def test_reactions_failing_never_block_the_answer(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    slack.fail("reactions.add", status=200, error="invalid_name", times=5)
    model.script(Reply.text("Answered anyway."))
    event = slack.mention_event("C1", "hi")
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: [m.text for m in bot_replies(slack, "C1", event["ts"])] == ["Answered anyway."], 10
    )


async def test_chat_update_429_storm_still_completes(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    words = " ".join(f"w{i}" for i in range(60))
    model.script(Reply.text(words, delay=0.01))
    slack.fail("chat.update", status=429, retry_after=1, times=4)
    event = slack.mention_event("C1", "go")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: [m.text for m in bot_replies(slack, "C1", event["ts"])] == [words], 15)
    assert sum(1 for c in slack.calls_to("chat.update") if c.status == 429) == 4


async def test_final_edit_that_never_succeeds_is_posted_as_a_new_message(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_FINAL_EDIT_DEADLINE_SECONDS="0.5")
    model.script(Reply.text("The final words."))
    slack.fail("chat.update", status=500, times=100)
    event = slack.mention_event("C1", "go")
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: any(m.text == "The final words." for m in bot_replies(slack, "C1", event["ts"])), 15
    )
    # The placeholder that would not take the edit is deleted: no "Thinking…" or Stop button stays.
    assert [m.text for m in bot_replies(slack, "C1", event["ts"])] == ["The final words."]
    assert len(slack.calls_to("chat.delete")) == 1


async def test_final_text_of_a_long_answer_posted_anew_keeps_its_order(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_FINAL_EDIT_DEADLINE_SECONDS="0.5")
    paragraphs = [f"Paragraph {i}: " + "word " * 150 for i in range(12)]  # about 9,000 characters
    answer = "\n\n".join(p.strip() for p in paragraphs)
    model.script(Reply.text(answer, words_per_chunk=50, delay=0.05))
    event = slack.mention_event("C1", "go")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: len(bot_replies(slack, "C1", event["ts"])) >= 2, 10)
    slack.fail("chat.update", status=500, times=1000)  # from now on no edit lands
    await model.wait_for(lambda: len(model.finished_at) == 1, 10)

    def paragraphs_shown() -> list[str]:
        texts = [m.text for m in bot_replies(slack, "C1", event["ts"])]
        return [p for t in texts for p in re.findall(r"Paragraph \d+", t)]

    # In order, each paragraph once: nothing lost, nothing repeated, no stale message left.
    await slack.wait_for(lambda: paragraphs_shown() == [f"Paragraph {i}" for i in range(12)], 15)
    texts = [m.text for m in bot_replies(slack, "C1", event["ts"])]
    assert all(len(t) <= 3900 for t in texts) and not any("Thinking" in t for t in texts)


async def test_placeholder_post_5xx_is_retried(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    slack.fail("chat.postMessage", status=503, times=1)
    model.script(Reply.text("Posted after a 503."))
    event = slack.mention_event("C1", "hello")
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: [m.text for m in bot_replies(slack, "C1", event["ts"])] == ["Posted after a 503."], 10
    )


async def test_placeholder_post_whose_response_was_lost_is_not_posted_twice(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    slack.fail("chat.postMessage", status=500, times=1, apply=True)  # it lands, the answer is lost
    model.script(Reply.text("Only once."))
    event = slack.mention_event("C1", "hello")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: "Only once." in [m.text for m in bot_replies(slack, "C1", event["ts"])], 10)
    assert len(bot_replies(slack, "C1", event["ts"])) == 1


async def test_placeholder_post_rate_limited_is_retried_after_retry_after(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    slack.fail("chat.postMessage", status=429, retry_after=1, times=1)
    model.script(Reply.text("After the rate limit."))
    event = slack.mention_event("C1", "hello")
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: [m.text for m in bot_replies(slack, "C1", event["ts"])] == ["After the rate limit."], 10
    )
    posts = slack.calls_to("chat.postMessage")
    assert posts[1].at - posts[0].at >= 0.95


async def test_a_rate_limited_post_pauses_the_whole_channel(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_POSTS_PER_CHANNEL_BURST="10")
    slack.fail("chat.postMessage", status=429, retry_after=1, times=1)
    model.default_reply = Reply.text("fine")
    first, second = slack.mention_event("C1", "one"), slack.mention_event("C1", "two")
    await slack.send_event(bot.url, first)
    await slack.wait_for(lambda: len(slack.calls_to("chat.postMessage")) == 1, 5)  # the 429
    await slack.send_event(bot.url, second)
    await slack.wait_for(lambda: all(bot_replies(slack, "C1", e["ts"]) for e in (first, second)), 10)
    posts = slack.calls_to("chat.postMessage")
    # the other question's placeholder waited out the Retry-After too, instead of meeting a 429
    assert [p.status for p in posts[:3]] == [429, 200, 200]
    assert all(p.at - posts[0].at >= 0.95 for p in posts[1:])


async def test_an_empty_answer_is_reported_with_a_retry_button(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    model.script(Reply.text(""))
    event = slack.mention_event("C1", "say nothing")
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: any("without writing anything" in m.text for m in bot_replies(slack, "C1", event["ts"])), 10
    )
    message = bot_replies(slack, "C1", event["ts"])[0]
    assert "Thinking" not in message.text
    actions = [e for b in message.blocks or [] for e in b.get("elements", []) if e.get("action_id")]
    assert [a["action_id"] for a in actions] == ["threadline_retry"]
