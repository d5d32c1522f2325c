"""End to end: answers streamed with Slack's native streams (the real app against the fake Slack and the
fake model), and the transport choice beside edits."""

from __future__ import annotations

import logging

import pytest

from bot.blocks import FEEDBACK_ACTION, RETRY_ACTION
from tests.conftest import StartBot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack, Message

ZWSP = "\u200b"


def answers(slack: FakeSlack, channel: str, thread_ts: str) -> list[Message]:
    """The bot's messages in the thread (deleted ones left out)."""
    return [m for m in slack.thread(channel, thread_ts) if m.user == slack.bot_user_id]


def shown(message: Message) -> str:
    """What a message shows: its Markdown blocks if an edit put the text there, else its text."""
    markdown = [b["text"] for b in message.blocks or [] if b.get("type") == "markdown"]
    return "".join(markdown) if markdown else message.text


def has_feedback(message: Message) -> bool:
    return any(
        e.get("type") == "feedback_buttons" and e.get("action_id") == FEEDBACK_ACTION
        for b in message.blocks or []
        if b.get("type") == "context_actions"
        for e in b.get("elements", [])
    )


async def finished(slack: FakeSlack, channel: str, ts: str, timeout: float = 10) -> list[Message]:
    """Wait until the answer in the thread of ``ts`` has ended (its streams stopped, reactions done)."""
    await slack.wait_for(
        lambda: (
            bool(slack.message(channel, ts).reactions.get("white_check_mark"))
            or bool(slack.message(channel, ts).reactions.get("warning"))
        ),
        timeout,
    )
    return answers(slack, channel, ts)


async def test_a_native_answer_end_to_end(slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot) -> None:
    bot = await start_bot(BOT_TRANSPORT="auto")
    text = "Hello **world**: tell <!here> and @channel, ask <@U0BOSS>, see `code`.\n\n- one\n- two"
    model.script(Reply.text(text, delay=0.01))
    event = slack.mention_event("C1", "say hello")
    await slack.send_event(bot.url, event)
    replies = await finished(slack, "C1", event["ts"])
    assert len(replies) == 1  # the placeholder is gone: the thread holds the answer alone
    answer = replies[0]
    assert answer.stream is not None and answer.stream.state == "completed"
    safe = f"tell @{ZWSP}here and @{ZWSP}channel, ask @{ZWSP}U0BOSS"
    assert shown(answer) == f"Hello **world**: {safe}, see `code`.\n\n- one\n- two"
    assert has_feedback(answer)
    start = slack.calls_to("chat.startStream")[0].args
    assert (start["recipient_user_id"], start["recipient_team_id"]) == ("U_ALICE", slack.team_id)
    assert start["thread_ts"] == event["ts"]
    assert not slack.calls_to("chat.update")  # no edits at all
    statuses = [(s.status, s.source) for s in slack.status_history("C1", event["ts"])]
    assert statuses[0] == ("is thinking…", "api") and statuses[-1] == ("", "reply")
    assert slack.thread_status("C1", event["ts"]) == ""


async def test_edit_transport_keeps_todays_behaviour(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="edit")
    model.script(Reply.text("Plain **answer**.", delay=0.01))
    event = slack.mention_event("C1", "hi")
    await slack.send_event(bot.url, event)
    replies = await finished(slack, "C1", event["ts"])
    assert [m.text for m in replies] == ["Plain *answer*."]
    assert not slack.streams() and not slack.calls_to("assistant.threads.setStatus")


async def test_ask_stays_on_edits(slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot) -> None:
    bot = await start_bot(BOT_TRANSPORT="native")
    model.script(Reply.text("Forty-two.", delay=0.01))
    status, _ = await slack.send_command(bot.url, text="what is six times seven?", channel_id="C1")
    assert status == 200
    await slack.wait_for(lambda: any("Forty-two." in m.text for m in slack.bot_messages("C1")), 10)
    assert not slack.streams()


async def test_a_dm_streams_without_recipient(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="native")
    model.script(Reply.text("Hi there.", delay=0.01))
    event = slack.dm_event("D1", "hello")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: any(m.stream and not m.stream.live for m in slack.streams("D1")), 10)
    start = slack.calls_to("chat.startStream")[0].args
    assert "recipient_user_id" not in start
    assert [shown(m) for m in answers(slack, "D1", event["ts"])] == ["Hi there."]


@pytest.mark.parametrize("error", ["unknown_method", "not_allowed", "feature_not_enabled"])
async def test_a_workspace_without_the_methods_falls_back_once(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    slack.disable_ai_methods(error)
    bot = await start_bot(BOT_TRANSPORT="auto")
    model.script(Reply.text("First answer.", delay=0.01), Reply.text("Second answer.", delay=0.01))
    with caplog.at_level(logging.WARNING):
        first = slack.mention_event("C1", "one")
        await slack.send_event(bot.url, first)
        assert [m.text for m in await finished(slack, "C1", first["ts"])] == ["First answer."]
        second = slack.mention_event("C2", "two")
        await slack.send_event(bot.url, second)
        assert [m.text for m in await finished(slack, "C2", second["ts"])] == ["Second answer."]
    assert len(slack.calls_to("chat.startStream")) <= 1  # tried once, remembered for the workspace
    assert len(slack.calls_to("assistant.threads.setStatus")) <= 1
    unavailable = [r for r in caplog.records if "native streams are unavailable" in r.getMessage()]
    assert len(unavailable) == 1


async def test_a_missing_recipient_error_never_loses_the_answer(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="native")
    slack.fail("chat.startStream", status=200, error="missing_recipient_user_id")
    model.script(Reply.text("Still here.", delay=0.01), Reply.text("Streamed.", delay=0.01))
    event = slack.mention_event("C1", "q")
    await slack.send_event(bot.url, event)
    assert [m.text for m in await finished(slack, "C1", event["ts"])] == ["Still here."]
    second = slack.mention_event("C2", "q2")  # only that answer went by edits
    await slack.send_event(bot.url, second)
    assert [shown(m) for m in await finished(slack, "C2", second["ts"])] == ["Streamed."]
    assert slack.streams("C2")


async def test_a_failed_native_answer_gets_a_retry_button(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="native", BOT_MAX_ATTEMPTS="1")
    model.script(Reply.text("Partial answer that", delay=0.01, cut_after=3))
    event = slack.mention_event("C1", "q")
    await slack.send_event(bot.url, event)
    replies = await finished(slack, "C1", event["ts"])
    assert len(replies) == 1
    assert shown(replies[0]).startswith("Partial answer")
    assert ":warning:" in shown(replies[0])
    assert any(
        e.get("action_id") == RETRY_ACTION for b in replies[0].blocks or [] for e in b.get("elements", [])
    )
    assert not has_feedback(replies[0])
    failed = shown(replies[0])
    model.script(Reply.text("The answer, retried.", delay=0.01))
    status, _ = await slack.send_action(bot.url, slack.button_action("C1", replies[0].ts, RETRY_ACTION))
    assert status == 200
    await slack.wait_for(lambda: len(slack.streams("C1")) == 2 and not slack.streams("C1")[-1].streaming, 10)
    await slack.wait_for(lambda: len(answers(slack, "C1", event["ts"])) == 2, 10)  # its placeholder gone
    first, again = answers(slack, "C1", event["ts"])
    assert shown(first) == failed and not first.blocks  # the text stays, the Retry button is gone
    assert shown(again) == "The answer, retried." and has_feedback(again)


async def test_slacks_stop_control_stops_the_answer_and_keeps_its_text(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="native", BOT_STREAM_APPEND_INTERVAL_SECONDS="0.1")
    model.script(Reply.text(" ".join(f"w{i}" for i in range(400)), delay=0.02))
    event = slack.mention_event("C1", "a long story")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: any("w5 " in m.text for m in slack.streams("C1")), 10)
    slack.add_user("U_MALLORY", "mallory")
    refused = slack.agent_session_stopped_event("C1", event["ts"], user="U_MALLORY")
    await slack.send_event(bot.url, refused)
    await slack.wait_for(lambda: bool(slack.ephemerals(user="U_MALLORY")), 5)
    assert "Only <@U_ALICE>" in slack.ephemerals(user="U_MALLORY")[0].text
    # Slack ended that stream for Mallory's press; the answer goes on (only the asker may stop it).
    await slack.wait_for(lambda: len(slack.streams("C1")) >= 2 and slack.streams("C1")[-1].streaming, 10)
    stop = slack.agent_session_stopped_event("C1", event["ts"], user="U_ALICE")
    await slack.send_event(bot.url, stop)
    replies = await finished(slack, "C1", event["ts"])
    await model.wait_for(lambda: model.abandoned_streams >= 1)  # the generation was cancelled
    last = shown(replies[-1])
    assert "Stopped by <@U_ALICE>" in last and "w399" not in last
    assert not has_feedback(replies[-1])
    words = "".join(shown(m) for m in replies).split("\n\n:black_square_for_stop:")[0].split()
    assert words == [f"w{i}" for i in range(len(words))]  # nothing lost, nothing twice


async def test_feedback_buttons_count_one_vote_per_user(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    from tests.e2e.test_e2e_ops import eventually, scrape, value

    bot = await start_bot(BOT_TRANSPORT="native")
    model.script(Reply.text("Worth a vote.", delay=0.01))
    event = slack.mention_event("C1", "q")
    await slack.send_event(bot.url, event)
    answer = (await finished(slack, "C1", event["ts"]))[0]
    for positive in (True, True, False):
        status, _ = await slack.send_action(
            bot.url, slack.feedback_action("C1", answer.ts, positive=positive)
        )
        assert status == 200
    await slack.send_action(bot.url, slack.feedback_action("C1", answer.ts, positive=True, user="U_BOB"))

    async def counted() -> bool:
        m = await scrape(bot)
        return value(m, "threadline_feedback_total", vote="up") == 2 and (
            value(m, "threadline_feedback_total", vote="down") == 1
        )

    await eventually(counted)
    m = await scrape(bot)
    # Alice's 👍 was taken back by her 👎: one vote each for Alice (down) and Bob (up) remain.
    assert value(m, "threadline_feedback_removed_total", vote="up") == 1


async def test_slacks_stop_before_the_first_words_stops_the_answer(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="native")
    model.script(Reply.text("Too late.", first_delay=30))
    event = slack.mention_event("C1", "q")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: slack.thread_status("C1", event["ts"]) == "is thinking…", 10)
    stop = slack.agent_session_stopped_event("C1", event["ts"], user="U_ALICE")
    assert stop["streaming_message_ts"] == []
    await slack.send_event(bot.url, stop)
    replies = await finished(slack, "C1", event["ts"])
    assert [m.text for m in replies] == [":black_square_for_stop: _Stopped by <@U_ALICE>._"]
    assert slack.thread_status("C1", event["ts"]) == ""  # no status left behind
    assert not slack.streams()


async def test_a_start_whose_answer_was_lost_is_found_not_repeated(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_TRANSPORT="native")
    slack.fail("chat.startStream", status=500, apply=True)  # it starts; its answer is lost
    model.script(Reply.text("Shown once, streamed on.", delay=0.01))
    event = slack.mention_event("C1", "q")
    await slack.send_event(bot.url, event)
    replies = await finished(slack, "C1", event["ts"])
    assert [shown(m) for m in replies] == ["Shown once, streamed on."]
    assert len(slack.streams("C1")) == 1 and has_feedback(replies[0])
