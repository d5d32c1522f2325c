import pytest

from bot.jobs import Job, Request, Source
from bot.payloads import (
    StreamsStopped,
    dedup_keys,
    feedback_vote,
    is_user_message,
    request_from_command,
    request_from_event,
    streams_stopped,
    strip_bot_mention,
)

BOT = "UBOT"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"user": "U1", "ts": "1.1", "text": "hi"}, True),
        ({"user": "U1", "ts": "1.1", "subtype": "file_share"}, True),
        ({"user": "U1", "ts": "1.1", "subtype": "thread_broadcast"}, True),
        ({"user": BOT, "ts": "1.1"}, False),
        ({"user": "U2", "ts": "1.1", "bot_id": "B2"}, False),
        ({"ts": "1.1", "subtype": "bot_message", "bot_id": "B2"}, False),
        ({"user": "U1", "ts": "1.1", "subtype": "message_changed"}, False),
        ({"user": "U1", "ts": "1.1", "subtype": "message_deleted"}, False),
        ({"user": "U1", "ts": "1.1", "subtype": "channel_join"}, False),
        ({"user": "U1", "ts": "1.1", "subtype": "channel_leave"}, False),
        ({"ts": "1.1", "text": "no user"}, False),
    ],
)
def test_which_messages_count(event: dict[str, str], expected: bool) -> None:
    assert is_user_message(event, BOT) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@UBOT> what is a token bucket?", "what is a token bucket?"),
        ("<@UBOT>", ""),
        ("  <@UBOT>   ", ""),
        ("hey <@UBOT> and <@U2> look", "hey and <@U2> look"),
        ("<@UBOT|threadline> hi", "hi"),
    ],
)
def test_strip_bot_mention(text: str, expected: str) -> None:
    assert strip_bot_mention(text, BOT) == expected


def test_request_from_mention_in_thread() -> None:
    event = {
        "type": "app_mention",
        "user": "U1",
        "text": "<@UBOT> more?",
        "ts": "2.0",
        "thread_ts": "1.0",
        "channel": "C1",
        "files": [{"id": "F1"}],
    }
    r = request_from_event(event, source=Source.MENTION, team_id="T1", bot_user_id=BOT, event_id="Ev1")
    assert (r.channel, r.user, r.text, r.ts, r.thread_ts, r.has_files) == (
        "C1",
        "U1",
        "more?",
        "2.0",
        "1.0",
        True,
    )
    assert dedup_keys(r) == ["event:T1:Ev1", "msg:T1:C1:2.0"]


def test_request_from_command_and_roundtrip() -> None:
    r = request_from_command(
        {"team_id": "T1", "channel_id": "C1", "user_id": "U1", "text": " why? ", "response_url": "http://x/r"}
    )
    assert r.source is Source.COMMAND and r.text == "why?" and r.thread_ts is None
    assert dedup_keys(r) == []
    job = Job(request=r, placeholder_ts="5.5")
    assert Job.from_dict(job.to_dict()) == job
    assert Request.from_dict(r.to_dict()) == r


def test_slack_escapes_are_undone_for_the_model() -> None:
    event = {"user": "U1", "ts": "1.0", "channel": "C1", "text": "<@UBOT> is 1 &lt; 2 &amp;&amp; 3 &gt; 2?"}
    r = request_from_event(event, source=Source.MENTION, team_id="T", bot_user_id=BOT, event_id=None)
    assert r.text == "is 1 < 2 && 3 > 2?"


def test_agent_session_stopped_is_parsed() -> None:
    event = {
        "type": "agent_session_stopped",
        "channel": "C1",
        "thread_ts": "1.0",
        "user": "U1",
        "streaming_message_ts": ["2.0", "3.0"],
    }
    assert streams_stopped(event) == StreamsStopped("C1", "1.0", "U1", ["2.0", "3.0"])
    # No stream was live (the answer waits for its first words): the thread names the answer.
    assert streams_stopped({**event, "streaming_message_ts": []}) == StreamsStopped("C1", "1.0", "U1", [])
    assert streams_stopped({**event, "streaming_message_ts": "2.0"}) == StreamsStopped(
        "C1", "1.0", "U1", ["2.0"]
    )
    assert streams_stopped({**event, "user": {"id": "U2"}}) == StreamsStopped(
        "C1", "1.0", "U2", ["2.0", "3.0"]
    )
    for broken in ({"user": None}, {"channel": ""}, {"thread_ts": None, "streaming_message_ts": []}):
        assert streams_stopped({**event, **broken}) is None


def test_feedback_button_values() -> None:
    assert feedback_vote({"value": "up:abc123"}) == "up"
    assert feedback_vote({"value": "down:abc123"}) == "down"
    assert feedback_vote({"value": "sideways:abc"}) is None
    assert feedback_vote({}) is None
