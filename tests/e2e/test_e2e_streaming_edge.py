"""Issue 14 item 15: an emphasis or link the model has opened but not closed is not shown raw."""

from __future__ import annotations

from tests.conftest import StartBot
from tests.e2e.test_e2e_buttons import bot_replies
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack


async def test_no_edit_shows_a_lone_marker_and_the_final_text_is_whole(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_EDIT_INTERVAL_SECONDS="0.05", BOT_EDIT_WINDOW_SECONDS="3")
    text = "*(Demo answer)* and **bold words arrive slowly** then [a link](https://example.com) end"
    model.script(Reply.text(text, delay=0.06))
    event = slack.mention_event("C1", "markdown please")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: any("end" in m.text for m in bot_replies(slack, "C1", event["ts"])), 10)
    (message,) = bot_replies(slack, "C1", event["ts"])
    shown = [e.text for e in message.edits]
    assert len(shown) >= 3, shown
    for edit in shown[:-1]:  # mrkdwn: *bold*, _italic_; every marker shown is closed
        assert edit.count("*") % 2 == 0 and edit.count("_") % 2 == 0 and "[" not in edit, shown
    assert "Demo answer" in shown[-1] and "bold words arrive slowly" in shown[-1]
