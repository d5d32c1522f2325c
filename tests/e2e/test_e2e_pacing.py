"""Issue 15 item 5: progress is paced over the window, not spent at the start of it."""

from __future__ import annotations

import itertools

from tests.conftest import StartBot
from tests.e2e.test_e2e_buttons import bot_replies
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack


async def test_a_lone_long_answer_never_freezes_while_text_arrives(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    # A 6 s window of 10 edits (progress may use 5 of them): at 0.2 s an edit, the old view spent
    # them in the first second and showed nothing new for the rest of the window.
    bot = await start_bot(
        BOT_EDITS_PER_MINUTE="10", BOT_EDIT_WINDOW_SECONDS="6", BOT_EDIT_INTERVAL_SECONDS="0.2"
    )
    words = " ".join(f"w{i}" for i in range(120))
    model.script(Reply.text(words, delay=0.07))  # about 8.4 s of text
    event = slack.mention_event("C1", "a long one")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: any("w119" in m.text for m in bot_replies(slack, "C1", event["ts"])), 30)
    (message,) = bot_replies(slack, "C1", event["ts"])
    times = [e.at for e in message.edits]
    text_until = model.finished_at[0]
    gaps = [b - a for a, b in itertools.pairwise(times) if b <= text_until]
    assert gaps and max(gaps) <= 2.5, gaps
