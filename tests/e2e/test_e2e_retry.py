"""Issue 14 item 14: Retry asks the question once more (not twice), and leaves only ✅ behind."""

from __future__ import annotations

from bot.blocks import RETRY_ACTION
from tests.conftest import StartBot
from tests.e2e.test_e2e_buttons import bot_replies, failed_question, press
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack


async def test_a_retried_question_is_sent_once_and_keeps_only_the_done_reaction(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot, event = await failed_question(slack, model, start_bot)
    await slack.wait_for(lambda: slack.message("C1", event["ts"]).reactions.get("warning"), 10)
    failed = bot_replies(slack, "C1", event["ts"])[0]
    model.script(Reply.text("42."))
    await slack.send_action(bot.url, press(slack, failed, RETRY_ACTION, "U_ALICE"))
    await slack.wait_for(lambda: slack.message("C1", event["ts"]).reactions.get("white_check_mark"), 10)
    await slack.wait_for(lambda: not slack.message("C1", event["ts"]).reactions.get("warning"), 10)
    assert not slack.message("C1", event["ts"]).reactions.get("eyes")
    questions = [m for m in model.requests[-1]["messages"] if "6 times 7" in str(m.get("content"))]
    assert len(questions) == 1, model.requests[-1]["messages"]
