"""The workspace's edit budget end to end: many answers streaming at once under a strict chat.update
limit (a short window stands in for Slack's minute) share it fairly, never meet a 429, and all end
with their exact final text."""

from __future__ import annotations

import asyncio
from collections import Counter

from bot.render import to_mrkdwn
from bot.split import split_message
from tests.conftest import StartBot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack


async def test_live_answers_share_a_tight_budget_fairly_without_429s(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    slack.window = 4.0
    slack.update_limit_per_minute = 12  # chat.update: at most 12 in any 4 s
    bot = await start_bot(
        BOT_EDITS_PER_MINUTE="11",
        BOT_EDIT_WINDOW_SECONDS="4",
        BOT_EDIT_INTERVAL_SECONDS="0.2",
        BOT_POSTS_PER_CHANNEL_BURST="10",
    )
    answers = {f"C{i}": " ".join(f"c{i}w{j}" for j in range(60)) for i in range(8)}
    model.reply_for = lambda body: Reply.text(  # type: ignore[method-assign]
        answers[str(body["messages"][-1]["content"]).rsplit(" ", 1)[-1]], delay=0.08
    )
    events = {channel: slack.mention_event(channel, f"go {channel}") for channel in answers}
    await asyncio.gather(*(slack.send_event(bot.url, e) for e in events.values()))

    def final(channel: str) -> bool:
        shown = [m.text for m in slack.thread(channel, events[channel]["ts"]) if m.user == slack.bot_user_id]
        return shown == split_message(to_mrkdwn(answers[channel]))

    await slack.wait_for(lambda: all(final(c) for c in answers), 40)
    updates = slack.calls_to("chat.update")
    assert not [c for c in updates if c.status == 429]
    per_answer = Counter(str(c.args["channel"]) for c in updates)
    assert set(per_answer) == set(answers)
    # Fair: every answer got about the same number of edits (its final included), and under the
    # tight budget the edits carried more text each instead of being more frequent.
    assert max(per_answer.values()) - min(per_answer.values()) <= 2, per_answer
    assert max(per_answer.values()) < 60 / 0.2 / 4


async def test_a_429_pauses_every_answer_of_the_workspace(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_EDIT_INTERVAL_SECONDS="0.1", BOT_POSTS_PER_CHANNEL_BURST="10")
    answers = {f"C{i}": " ".join(f"c{i}w{j}" for j in range(40)) for i in range(3)}
    model.reply_for = lambda body: Reply.text(  # type: ignore[method-assign]
        answers[str(body["messages"][-1]["content"]).rsplit(" ", 1)[-1]], delay=0.05
    )
    events = {channel: slack.mention_event(channel, f"go {channel}") for channel in answers}
    await asyncio.gather(*(slack.send_event(bot.url, e) for e in events.values()))
    await slack.wait_for(lambda: len(slack.calls_to("chat.update")) >= 2, 10)
    slack.fail("chat.update", status=429, retry_after=1, times=1)

    def final(channel: str) -> bool:
        shown = [m.text for m in slack.thread(channel, events[channel]["ts"]) if m.user == slack.bot_user_id]
        return shown == split_message(to_mrkdwn(answers[channel]))

    await slack.wait_for(lambda: all(final(c) for c in answers), 20)
    updates = slack.calls_to("chat.update")
    limited = next(c for c in updates if c.status == 429)
    # No answer's edit went out during the Retry-After second, whichever answer met the 429 (an edit
    # already on its way when the 429 came back may arrive just after it).
    during = [c for c in updates if limited.at + 0.1 < c.at < limited.at + 0.95]
    assert not during, [(c.args["channel"], c.at - limited.at) for c in during]
    assert any(c.at >= limited.at + 0.95 for c in updates)  # and edits resumed after it
