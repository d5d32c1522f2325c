"""Issue 14 item 3: status reactions have their own per-workspace budget and never meet a 429; under
pressure they wait for a slot, and a 👀 whose answer is done before it got one is skipped."""

from __future__ import annotations

from tests.conftest import StartBot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack


async def test_many_questions_at_once_meet_no_429_on_reactions(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    # Slack's limit scaled down: 6 reactions.add in any 3 s; the bot's budget 5 in any 3 s.
    slack.rate_limits["reactions.add"] = 6
    slack.rate_windows["reactions.add"] = 3.0
    bot = await start_bot(BOT_REACTIONS_PER_MINUTE="5", BOT_EDIT_WINDOW_SECONDS="3")
    model.default_reply = Reply.text("done")
    events = [slack.mention_event(f"C{i}", f"q{i}") for i in range(12)]
    for event in events:
        await slack.send_event(bot.url, event)

    def finished(ts: str, channel: str) -> bool:
        return bool(slack.message(channel, ts).reactions.get("white_check_mark"))

    await slack.wait_for(lambda: all(finished(e["ts"], e["channel"]) for e in events), 30)
    adds = slack.calls_to("reactions.add")
    assert not [c for c in adds if c.status == 429], [c.status for c in adds]
    assert not any(slack.message(e["channel"], e["ts"]).reactions.get("eyes") for e in events)
