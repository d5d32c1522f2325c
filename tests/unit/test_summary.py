"""The pure parts of "Summarize thread": the shortcut's payload, the thread as turns, the prompt."""

from __future__ import annotations

from typing import Any

import pytest

from bot.context import Turn
from bot.jobs import Source
from bot.payloads import IncompletePayload, dedup_keys, request_from_shortcut
from bot.summary import SUMMARY_INSTRUCTIONS, SUMMARY_REQUEST, summary_prompt, thread_turns
from bot.texts import summary_cut_note, summary_partial_note


def shortcut(**message: Any) -> dict[str, Any]:
    return {
        "type": "message_action",
        "callback_id": "summarize_thread",
        "trigger_id": "1.2.3",
        "response_url": "https://hooks.slack.com/app/1",
        "team": {"id": "T1", "domain": "t"},
        "channel": {"id": "C1", "name": "general"},
        "user": {"id": "U_CAROL", "name": "carol"},
        "message": {"type": "message", "user": "U_BOB", "text": "hi", **message},
    }


def test_a_shortcut_on_a_reply_summarizes_its_thread() -> None:
    request = request_from_shortcut(shortcut(ts="2.0", thread_ts="1.0"), team_id="T1")
    assert request.source is Source.SUMMARY
    assert (request.channel, request.user, request.thread_ts) == ("C1", "U_CAROL", "1.0")
    assert request.response_url == "https://hooks.slack.com/app/1"
    assert request.ts is None and request.text == ""
    assert dedup_keys(request) == []  # a later summary of the same thread is not a duplicate


def test_a_shortcut_on_a_root_or_lone_message_summarizes_the_thread_it_starts() -> None:
    assert request_from_shortcut(shortcut(ts="1.0", thread_ts="1.0"), team_id="T1").thread_ts == "1.0"
    lone = request_from_shortcut(shortcut(ts="3.0"), team_id="")
    assert lone.thread_ts == "3.0" and lone.team_id == "T1"  # the payload's team when Bolt had none


def test_an_incomplete_shortcut_names_what_is_missing() -> None:
    payload = shortcut(ts="1.0")
    del payload["channel"]
    payload["message"].pop("ts")
    with pytest.raises(IncompletePayload) as err:
        request_from_shortcut(payload, team_id="T1")
    assert err.value.fields == ("channel", "message ts")
    with pytest.raises(IncompletePayload):
        request_from_shortcut(shortcut(ts="1.0", thread_ts=5), team_id="T1")


THREAD: list[dict[str, Any]] = [
    {"ts": "1.0", "user": "U_ALICE", "text": "Which database?", "thread_ts": "1.0", "reply_count": 6},
    {"ts": "1.1", "user": "U_BOB", "subtype": "channel_join", "text": "<@U_BOB> has joined the channel"},
    {"ts": "1.2", "user": "U_BOB", "text": "<@UBOT> Postgres, says <@U_ALICE>"},
    {"ts": "1.3", "user": "UBOT", "bot_id": "BBOT", "text": "Postgres it is."},
    {"ts": "1.4", "bot_id": "B_ALERTS", "subtype": "bot_message", "text": "Disk pressure on db-1"},
    {"ts": "1.5", "user": "U_CAROL", "text": "   "},
    {"ts": "1.6", "user": "UBOT", "bot_id": "BBOT", "text": "_Thinking…_"},
]


def test_the_thread_becomes_attributed_turns() -> None:
    turns = thread_turns(THREAD, bot_user_id="UBOT", skip={"1.6"})
    assert turns == [
        Turn(role="user", text="Which database?", user="U_ALICE", ts="1.0"),
        Turn(role="user", text="Postgres, says <@U_ALICE>", user="U_BOB", ts="1.2"),
        Turn(role="assistant", text="Postgres it is.", ts="1.3"),
        Turn(role="user", text="Disk pressure on db-1", user="B_ALERTS", ts="1.4"),  # another bot: quoted
    ]


def turns(n: int) -> list[Turn]:
    root = Turn(role="user", text="The topic: " + "x" * 40, user="U_ALICE", ts="1.0")
    return [root] + [Turn(role="user", text=f"reply {i:04d} " + "y" * 30, user="U_BOB") for i in range(n)]


def test_the_prompt_keeps_the_first_message_and_the_newest_replies() -> None:
    built = summary_prompt(
        system_prompt="You are a bot.", turns=turns(100), requester="U_CAROL", budget_tokens=400
    )
    messages = built.prompt.messages
    assert messages[0]["role"] == "system"
    assert messages[0]["content"] == f"You are a bot.\n\n{SUMMARY_INSTRUCTIONS}"
    assert "The topic" in messages[1]["content"]  # the root, although older than every reply
    assert "reply 0099" in messages[-2]["content"]  # the newest reply, just before the request
    assert all("reply 0000" not in m["content"] for m in messages)
    assert messages[-1] == {"role": "user", "content": f"<@U_CAROL>: {SUMMARY_REQUEST}"}
    assert built.total == 101 and built.kept == len(messages) - 2 < 101
    contents = [m["content"] for m in messages[2:-1]]
    assert contents == sorted(contents)  # oldest first, as in the thread


def test_a_short_thread_is_sent_whole() -> None:
    built = summary_prompt(system_prompt="S", turns=turns(3), requester="U_CAROL", budget_tokens=8000)
    assert (built.kept, built.total) == (4, 4) and len(built.prompt.messages) == 6
    empty = summary_prompt(system_prompt="S", turns=[], requester="U_CAROL", budget_tokens=8000)
    assert (empty.kept, empty.total) == (0, 0) and len(empty.prompt.messages) == 2


def test_the_notes_say_what_a_summary_covers() -> None:
    assert "30 of its 1,201 messages" in summary_partial_note(30, 1_201)
    assert "first 10,000 messages" in summary_cut_note(10_000)
