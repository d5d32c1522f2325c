"""Questions that are not what they seem (issue 14, items 8 and 13), against the real app."""

from __future__ import annotations

import re

from bot.texts import ASK_USAGE_TEXT, HELP_TEXT
from tests.conftest import Bot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack

# zero-width space, ZWJ, ZWNJ, BOM, LRM, RLM, RLO, PDF, word joiner, a no-break space
INVISIBLE = "\u200b\u200d\u200c\ufeff\u200e\u200f\u202e\u202c\u2060\u00a0"


def bot_texts(slack: FakeSlack, channel: str, thread_ts: str) -> list[str]:
    return [m.text for m in slack.thread(channel, thread_ts) if m.user == slack.bot_user_id]


async def test_a_question_of_invisible_characters_gets_help_not_a_model_call(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    mention = slack.mention_event("C1", INVISIBLE)
    dm = slack.dm_event("D1", f" {INVISIBLE} ")
    for event in (mention, dm):
        assert (await slack.send_event(bot.url, event))[0] == 200
    await slack.wait_for(lambda: bot_texts(slack, "C1", mention["ts"]) == [HELP_TEXT], 10)
    await slack.wait_for(lambda: bot_texts(slack, "D1", dm["ts"]) == [HELP_TEXT], 10)
    status, body = await slack.send_command(bot.url, text=INVISIBLE)
    assert status == 200 and body == ASK_USAGE_TEXT  # the ephemeral ack
    assert not model.requests  # both were answered with help, the command with its usage


async def test_a_very_long_question_keeps_its_beginning_and_its_end(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    model.script(Reply.text("The disk filled up."))
    log = "".join(f"12:00:{i % 60:02d} worker {i}: processed a job in 13 ms\n" for i in range(1600))
    text = "Last night's log:\n" + log + "Why did the worker stop at the end?"
    assert len(text) >= 72_000
    event = slack.mention_event("C1", text)
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: any("The disk filled up." in t for t in bot_texts(slack, "C1", event["ts"])), 10
    )
    question = model.requests[-1]["messages"][-1]["content"]
    assert question.startswith("<@U_ALICE>: Last night's log:\n12:00:00 worker 0")
    assert question.endswith("Why did the worker stop at the end?")  # the question was at the end
    assert re.search(r"\[… [\d,]+ characters omitted …\]", question)
    assert len(question) < 8000 * 4  # within BOT_CONTEXT_TOKENS (8,000 by default)
