"""Questions that are not what they seem (issue 14, items 8 and 13), against the real app."""

from __future__ import annotations

from bot.constants import ASK_USAGE_TEXT, HELP_TEXT
from tests.conftest import Bot
from tests.fakes.openai import FakeOpenAI
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
