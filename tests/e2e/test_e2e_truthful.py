"""Issue 15 item 1 and issue 14 item 14, in the thread: a cut-off answer says so; a failure only an
admin can fix has no Retry button."""

from __future__ import annotations

from bot.blocks import RETRY_ACTION
from bot.errors import TRUNCATED_NOTE
from tests.conftest import StartBot
from tests.e2e.test_e2e_buttons import bot_replies, button
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack


async def test_an_answer_cut_at_the_length_limit_says_so(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    model.script(Reply.text("one two three", finish_reason="length"))
    event = slack.mention_event("C1", "a long story please")
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: any(TRUNCATED_NOTE.split("`")[0] in m.text for m in bot_replies(slack, "C1", event["ts"])), 10
    )
    (message,) = bot_replies(slack, "C1", event["ts"])
    assert message.text.startswith("one two three")
    await slack.wait_for(lambda: slack.message("C1", event["ts"]).reactions.get("white_check_mark"), 10)
    rendered, _ = bot.runtime.metrics.render()
    assert b"threadline_answers_truncated_total 1.0" in rendered


async def test_an_unknown_model_is_for_an_admin_and_has_no_retry_button(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    model.script(Reply.litellm_error(400, "Invalid model name passed in model=fake-model."))
    event = slack.mention_event("C1", "hello")
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: any("OPENAI_MODEL" in m.text for m in bot_replies(slack, "C1", event["ts"])), 10
    )
    (message,) = bot_replies(slack, "C1", event["ts"])
    assert button(message, RETRY_ACTION) is None
