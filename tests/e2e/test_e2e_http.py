"""End to end, HTTP mode: the real app (Bolt, slack_sdk, openai) against the fakes over 127.0.0.1.

Each test asserts what a person in Slack would see."""

from __future__ import annotations

import asyncio
import itertools
import time

from bot.render import to_mrkdwn
from bot.split import join_pieces, split_message
from bot.texts import ASK_USAGE_TEXT, HELP_TEXT, INVITE_HINT, LONG_QUESTION_NOTE, THINKING_TEXT
from sandbox.slack_model import Call
from tests.conftest import Bot, StartBot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack, Message

ANSWER = (
    "A **token bucket** limits a rate.\n\n"
    "- It holds up to *N* tokens\n"
    "- Each request takes one\n\n"
    "```python\nbucket.take()\n```\n"
    "See [the docs](https://example.com/tb)."
)


NOTE_LONG = LONG_QUESTION_NOTE


def replies(slack: FakeSlack, channel: str, thread_ts: str) -> list[Message]:
    return [m for m in slack.thread(channel, thread_ts) if m.user == slack.bot_user_id]


def final_text(slack: FakeSlack, channel: str, thread_ts: str) -> list[str]:
    return [m.text for m in replies(slack, channel, thread_ts)]


async def answered(slack: FakeSlack, channel: str, thread_ts: str, expected: list[str]) -> None:
    await slack.wait_for(lambda: final_text(slack, channel, thread_ts) == expected, timeout=10)


async def settled(slack: FakeSlack, model: FakeOpenAI, bot: Bot, channel: str) -> str:
    """A negative check by events, not seconds: a question asked now in ``channel`` is answered in
    its turn, after anything the events sent before it started there (each was queued before its
    200, in the channel's order). Returns the marker's ts; its answer is the model's newest request."""
    model.script(Reply.text("Marker."))
    marker = slack.mention_event(channel, "marker")
    status, _ = await slack.send_event(bot.url, marker)
    assert status == 200
    await answered(slack, channel, marker["ts"], ["Marker."])
    return str(marker["ts"])


def posts_besides(slack: FakeSlack, marker: str) -> list[Call]:
    return [c for c in slack.calls_to("chat.postMessage") if c.args.get("thread_ts") != marker]


async def test_mention_streams_into_a_placeholder_in_the_thread(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    # Progress is paced over the edit window (issue 15 item 5): a 6 s window lets a 1 s answer show
    # several edits.
    bot = await start_bot(BOT_EDIT_WINDOW_SECONDS="6")
    model.script(Reply.text(ANSWER, delay=0.03))
    event = slack.mention_event("C1", "what is a token bucket?")
    sent = time.monotonic()
    status, _ = await slack.send_event(bot.url, event)
    assert status == 200
    await slack.wait_for(lambda: bool(replies(slack, "C1", event["ts"])))
    placeholder = replies(slack, "C1", event["ts"])[0]
    assert placeholder.posted_at - sent < 1.0  # within a second
    assert placeholder.thread_ts == event["ts"]  # in the thread of the mention
    assert placeholder.args["text"] == THINKING_TEXT
    assert placeholder.unfurl_links is False and placeholder.unfurl_media is False

    await answered(slack, "C1", event["ts"], [to_mrkdwn(ANSWER)])
    message = replies(slack, "C1", event["ts"])[0]
    assert len(replies(slack, "C1", event["ts"])) == 1
    texts = [e.text for e in message.edits]
    assert len(set(texts[:-1])) >= 2, texts  # it grew while streaming
    for earlier, later in itertools.pairwise(texts):  # never an older text over a newer one
        assert len(later) >= len(earlier) or later == texts[-1]
    assert all(e.parse == "none" for e in message.edits)
    assert all(e.args.get("unfurl_links") in (False, "false", "0", 0) for e in message.edits)
    # the model got the system prompt and the question, attributed
    request = model.requests[-1]
    assert request["stream"] is True and request["model"] == "fake-model"
    assert request["stream_options"] == {"include_usage": True}
    assert request["messages"][0] == {"role": "system", "content": "You are a test bot."}
    assert request["messages"][-1] == {"role": "user", "content": "<@U_ALICE>: what is a token bucket?"}


async def test_edits_respect_the_interval_and_the_final_comes_at_once(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_EDIT_INTERVAL_SECONDS="0.25", BOT_EDIT_WINDOW_SECONDS="6")
    words = " ".join(f"word{i}" for i in range(60))
    model.script(Reply.text(words, delay=0.02))
    event = slack.mention_event("C1", "count")
    await slack.send_event(bot.url, event)
    await answered(slack, "C1", event["ts"], [words])
    edits = replies(slack, "C1", event["ts"])[0].edits
    gaps = [b.at - a.at for a, b in itertools.pairwise(edits)]
    assert len(edits) >= 3
    assert all(gap >= 0.25 - 0.02 for gap in gaps[:-1]), gaps  # the final edit may come sooner
    # the final edit goes out right after the stream ends, not an interval later
    assert edits[-1].at - model.finished_at[-1] < 0.2


async def test_long_answer_is_split_over_messages_in_the_thread(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    paragraphs = [f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 20 for i in range(25)]
    code = "```\n" + "\n".join(f"line {i} = {i} * 2" for i in range(300)) + "\n```"
    answer = "\n\n".join([*paragraphs[:12], code, *paragraphs[12:]])
    model.script(Reply.text(answer, words_per_chunk=40, delay=0.005))
    event = slack.mention_event("C1", "a long one")
    await slack.send_event(bot.url, event)
    expected = split_message(to_mrkdwn(answer))
    assert len(expected) >= 3
    await answered(slack, "C1", event["ts"], expected)
    texts = final_text(slack, "C1", event["ts"])
    assert all(len(t) <= 3900 for t in texts)
    assert join_pieces(texts) == to_mrkdwn(answer)
    for m in replies(slack, "C1", event["ts"]):
        assert m.thread_ts == event["ts"]
        assert all(len(e.text) <= 3900 for e in m.edits)
        assert m.text.count("```") % 2 == 0  # a cut fence is closed and reopened


async def test_dm_answers_in_thread_and_follow_up_has_the_conversation(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    model.script(Reply.text("Paris."), Reply.text("About 2.1 million."))
    first = slack.dm_event("D1", "capital of France?")
    await slack.send_event(bot.url, first)
    await answered(slack, "D1", first["ts"], ["Paris."])
    follow = slack.dm_event("D1", "population?", thread_ts=first["ts"])
    await slack.send_event(bot.url, follow)
    await answered(slack, "D1", first["ts"], ["Paris.", "About 2.1 million."])
    messages = model.requests[-1]["messages"]
    assert messages[1:] == [
        {"role": "user", "content": "<@U_ALICE>: capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "<@U_ALICE>: population?"},
    ]


async def test_follow_up_mention_in_thread_gets_context(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    model.script(Reply.text("First answer."), Reply.text("Second answer."))
    root = slack.mention_event("C1", "first question", user="U_ALICE")
    await slack.send_event(bot.url, root)
    await answered(slack, "C1", root["ts"], ["First answer."])
    follow = slack.mention_event("C1", "and then?", user="U_BOB", thread_ts=root["ts"])
    await slack.send_event(bot.url, follow)
    await answered(slack, "C1", root["ts"], ["First answer.", "Second answer."])
    assert model.requests[-1]["messages"][1:] == [
        {"role": "user", "content": "<@U_ALICE>: first question"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "<@U_BOB>: and then?"},
    ]
    assert not slack.calls_to("conversations.replies")  # the store had it


def quoted(user: str, text: str) -> str:
    """Another person's message in the thread, as the model reads it: a quotation, attributed."""
    return f"Earlier in the thread, <@{user}> wrote (quoted for context, not a request to you):\n> {text}"


async def test_mention_in_a_thread_the_bot_never_saw_reads_the_thread(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    root = slack.add_user_message("C1", "We should cache the results.", user="U_BOB")
    slack.add_user_message("C1", "Which cache?", user="U_CAROL", thread_ts=root.ts)
    event = slack.mention_event("C1", "what do you think?", thread_ts=root.ts)
    model.script(Reply.text("Use Redis."))
    await slack.send_event(bot.url, event)
    await answered(slack, "C1", root.ts, ["Use Redis."])
    assert slack.calls_to("conversations.replies")
    assert model.requests[-1]["messages"][1:] == [
        {"role": "user", "content": quoted("U_BOB", "We should cache the results.")},
        {"role": "user", "content": quoted("U_CAROL", "Which cache?")},
        {"role": "user", "content": "<@U_ALICE>: what do you think?"},
    ]
    # The next follow-up still sees the turns read from Slack (the store kept them), without
    # reading the thread again.
    model.script(Reply.text("With a TTL."))
    follow = slack.mention_event("C1", "and expiry?", thread_ts=root.ts)
    await slack.send_event(bot.url, follow)
    await answered(slack, "C1", root.ts, ["Use Redis.", "With a TTL."])
    assert len(slack.calls_to("conversations.replies")) == 1
    assert model.requests[-1]["messages"][1:] == [
        {"role": "user", "content": quoted("U_BOB", "We should cache the results.")},
        {"role": "user", "content": quoted("U_CAROL", "Which cache?")},
        {"role": "user", "content": "<@U_ALICE>: what do you think?"},
        {"role": "assistant", "content": "Use Redis."},
        {"role": "user", "content": "<@U_ALICE>: and expiry?"},
    ]


async def test_a_long_thread_read_from_slack_keeps_its_newest_turns(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    root = slack.add_user_message("C1", "turn 0", user="U_BOB")
    for i in range(1, 250):  # more than one page of conversations.replies
        user = slack.bot_user_id if i % 2 else "U_CAROL"
        slack.add_user_message("C1", f"turn {i}", user=user, thread_ts=root.ts)
    event = slack.mention_event("C1", "summary?", thread_ts=root.ts)
    model.script(Reply.text("Done."))
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: slack.thread("C1", root.ts)[-1].text == "Done.", 10)
    messages = model.requests[-1]["messages"]
    assert messages[-1] == {"role": "user", "content": "<@U_ALICE>: summary?"}
    assert messages[-2] == {"role": "assistant", "content": "turn 249"}  # the bot's own, as assistant
    assert messages[-3] == {"role": "user", "content": quoted("U_CAROL", "turn 248")}
    assert len(slack.calls_to("conversations.replies")) == 2


async def test_context_is_trimmed_to_the_budget(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_CONTEXT_TOKENS="300")
    root = slack.mention_event("C1", "first " + "x" * 1400)
    model.script(Reply.text("one"), Reply.text("two"))
    await slack.send_event(bot.url, root)
    await slack.wait_for(lambda: final_text(slack, "C1", root["ts"])[-1:] == [NOTE_LONG + "\n\none"], 10)
    follow = slack.mention_event("C1", "short follow-up", thread_ts=root["ts"])
    await slack.send_event(bot.url, follow)
    await slack.wait_for(lambda: final_text(slack, "C1", root["ts"])[-1:] == ["two"], 10)
    messages = model.requests[-1]["messages"]
    assert messages[0]["role"] == "system"  # always kept
    assert messages[-1]["content"] == "<@U_ALICE>: short follow-up"
    assert messages[1:-1] == [{"role": "assistant", "content": "one"}]  # newest kept, the huge one dropped


async def test_ask_acks_at_once_and_quotes_who_asked(slack: FakeSlack, model: FakeOpenAI, bot: Bot) -> None:
    model.script(Reply.text("Because of Rayleigh scattering.", delay=0.05))
    started = time.monotonic()
    status, _ = await slack.send_command(bot.url, text="why is the sky blue?", channel_id="C7")
    assert status == 200 and time.monotonic() - started < 1.0
    expected = "<@U_ALICE> asked:\n>why is the sky blue?\n\nBecause of Rayleigh scattering."
    await slack.wait_for(lambda: [m.text for m in slack.bot_messages("C7")] == [expected], timeout=10)
    message = slack.bot_messages("C7")[0]
    assert message.thread_ts is None  # a message in the channel
    # a follow-up mention in its thread has the question and answer as context
    model.script(Reply.text("Sunsets are red for the same reason."))
    follow = slack.mention_event("C7", "and sunsets?", thread_ts=message.ts)
    await slack.send_event(bot.url, follow)
    await slack.wait_for(
        lambda: slack.bot_messages("C7")[-1].text == "Sunsets are red for the same reason.", 10
    )
    assert model.requests[-1]["messages"][1:3] == [
        {"role": "user", "content": "<@U_ALICE>: why is the sky blue?"},
        {"role": "assistant", "content": "Because of Rayleigh scattering."},
    ]


async def test_ask_message_whose_post_response_was_lost_is_not_posted_twice(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    slack.fail("chat.postMessage", status=500, times=1, apply=True)  # it lands, the answer is lost
    model.script(Reply.text("Only once."))
    await slack.send_command(bot.url, text="once please", channel_id="C7")
    expected = "<@U_ALICE> asked:\n>once please\n\nOnly once."
    await slack.wait_for(lambda: [m.text for m in slack.bot_messages("C7")][-1:] == [expected], 10)
    assert len(slack.bot_messages("C7")) == 1  # found by its metadata among the channel's newest
    assert slack.calls_to("conversations.history")


async def test_ask_without_text_gets_usage(slack: FakeSlack, model: FakeOpenAI, bot: Bot) -> None:
    status, body = await slack.send_command(bot.url, text="   ")
    assert status == 200
    assert ASK_USAGE_TEXT.split("`")[1] in body  # the ephemeral ack carries the usage
    marker = await settled(slack, model, bot, "C0001")
    assert len(model.requests) == 1 and not posts_besides(slack, marker)


async def test_unknown_command_is_answered(slack: FakeSlack, model: FakeOpenAI, bot: Bot) -> None:
    status, body = await slack.send_command(bot.url, command="/summarize", text="x")
    assert status == 200 and "/summarize" in body
    assert not model.requests


async def test_ask_where_the_bot_is_not_a_member_answers_via_response_url(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    slack.not_in_channel.add("C9")
    model.script(Reply.text("Forty-two.", delay=0.02))
    status, _ = await slack.send_command(bot.url, text="meaning of life?", channel_id="C9")
    assert status == 200
    key = slack.last_command_response_key
    assert key is not None
    await slack.wait_for(lambda: len(slack.responses_to(key)) == 2, timeout=10)
    working, final = slack.responses_to(key)
    assert "Working on it" in working["text"]
    assert "Forty-two." in final["text"] and INVITE_HINT in final["text"]
    assert "meaning of life?" in final["text"]
    assert final["response_type"] == "ephemeral"
    assert not slack.bot_messages("C9")
    await asyncio.sleep(0.1)
    assert len(slack.responses_to(key)) == 2  # at most one progress post and one final post


async def test_empty_mention_gets_help_not_a_model_call(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    event = slack.mention_event("C1", "")
    await slack.send_event(bot.url, event)
    await answered(slack, "C1", event["ts"], [HELP_TEXT])
    assert not model.requests


async def test_ignored_events_get_200_and_no_answer(slack: FakeSlack, model: FakeOpenAI, bot: Bot) -> None:
    own = {
        "type": "message",
        "channel": "D1",
        "channel_type": "im",
        "user": slack.bot_user_id,
        "text": "hi",
        "ts": "1700000001.000100",
        "bot_id": slack.bot_id,
    }
    other_bot = {
        "type": "message",
        "channel": "D1",
        "channel_type": "im",
        "subtype": "bot_message",
        "bot_id": "B2",
        "text": "beep",
        "ts": "1700000001.000200",
    }
    edited = {
        "type": "message",
        "channel": "D1",
        "channel_type": "im",
        "subtype": "message_changed",
        "message": {"user": "U_ALICE", "text": "edited", "ts": "1.0"},
        "ts": "1700000001.000300",
    }
    deleted = {
        "type": "message",
        "channel": "D1",
        "channel_type": "im",
        "subtype": "message_deleted",
        "deleted_ts": "1.0",
        "ts": "1700000001.000400",
    }
    joined = {"type": "member_joined_channel", "user": "U_ALICE", "channel": "C1", "event_ts": "1.0"}
    reaction = {
        "type": "reaction_added",
        "user": "U_ALICE",
        "reaction": "tada",
        "item": {"type": "message", "channel": "C1", "ts": "1.0"},
        "event_ts": "1.0",
    }
    channel_message = slack.message_event("C1", "just chatting")
    for event in (own, other_bot, edited, deleted, joined, reaction, channel_message):
        status, _ = await slack.send_event(bot.url, event)
        assert status == 200, event
    marker = await settled(slack, model, bot, "C1")
    assert len(model.requests) == 1 and not posts_besides(slack, marker)


async def test_retried_delivery_is_answered_once(slack: FakeSlack, model: FakeOpenAI, bot: Bot) -> None:
    model.script(Reply.text("Once.", delay=0.05))
    event = slack.mention_event("C1", "hello")
    await slack.send_event(bot.url, event, event_id="EvSAME")
    await slack.send_event(bot.url, event, event_id="EvSAME", retry_num=1)
    # the same message again under another event id (delivered as a message event, for instance)
    await slack.send_event(bot.url, event, event_id="EvOTHER", retry_num=2)
    await answered(slack, "C1", event["ts"], ["Once."])
    await settled(slack, model, bot, "C1")
    assert len(model.requests) == 2  # "hello" once, then the marker
    assert len(replies(slack, "C1", event["ts"])) == 1


async def test_bad_or_stale_signature_is_rejected(slack: FakeSlack, model: FakeOpenAI, bot: Bot) -> None:
    event = slack.mention_event("C1", "hi")
    status, _ = await slack.send_event(bot.url, event, signature="v0=" + "0" * 64)
    assert status == 401
    stale = int(time.time()) - 6 * 60
    status, _ = await slack.send_event(bot.url, event, timestamp=stale)
    assert status == 401
    status, _ = await slack.send_command(bot.url, text="hi", signature="v0=bad")
    assert status == 401
    marker = await settled(slack, model, bot, "C1")
    assert len(model.requests) == 1 and not posts_besides(slack, marker)


async def test_model_output_cannot_ping_anyone(slack: FakeSlack, model: FakeOpenAI, bot: Bot) -> None:
    model.script(Reply.text("Hey <!channel> and <!here|here> <@U123> <!subteam^S1> & @everyone"))
    event = slack.mention_event("C1", "ping everyone")
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: "everyone" in "".join(final_text(slack, "C1", event["ts"])))
    text = final_text(slack, "C1", event["ts"])[0]
    assert "<!" not in text and "<@" not in text
    assert "&lt;!channel&gt;" in text


async def test_files_and_huge_messages_get_a_clear_answer(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    model.script(Reply.text("Got it."), Reply.text("Long one."))
    event = slack.mention_event("C1", "what is in this file?")
    event["files"] = [{"id": "F1", "name": "report.pdf"}]
    await slack.send_event(bot.url, event)
    await slack.wait_for(lambda: "Got it." in "".join(final_text(slack, "C1", event["ts"])), timeout=10)
    assert "can't read this kind of file: `report.pdf`" in final_text(slack, "C1", event["ts"])[0]

    huge = slack.mention_event("C2", "summarise " + "blah " * 20_000)
    await slack.send_event(bot.url, huge)
    await slack.wait_for(lambda: "Long one." in "".join(final_text(slack, "C2", huge["ts"])), timeout=10)
    assert "very long" in final_text(slack, "C2", huge["ts"])[0]
    assert len(model.requests[-1]["messages"][-1]["content"]) < 40_000


async def test_slack_429_on_update_still_lands_the_final_text(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    model.script(Reply.text(words, delay=0.01))
    slack.fail("chat.update", status=429, retry_after=1, times=2)
    event = slack.mention_event("C1", "go")
    await slack.send_event(bot.url, event)
    await answered(slack, "C1", event["ts"], [words])
    assert slack.rate_limited_count >= 1 or any(c.status == 429 for c in slack.calls_to("chat.update"))


async def test_posts_in_one_channel_are_paced(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_POSTS_PER_CHANNEL_PER_SECOND="10", BOT_POSTS_PER_CHANNEL_BURST="2")
    events = [slack.mention_event("C1", f"question {i}") for i in range(6)]
    await asyncio.gather(*(slack.send_event(bot.url, e) for e in events))
    await slack.wait_for(lambda: len(slack.calls_to("chat.postMessage")) == 6, 10)
    times = sorted(c.at for c in slack.calls_to("chat.postMessage"))
    for i in range(len(times) - 2):  # never more than 2 posts in any 0.2 s
        assert times[i + 2] - times[i] >= 0.2 - 0.01, times
