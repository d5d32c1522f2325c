import pytest

from bot.jobs import Job, Request, Source
from bot.payloads import (
    ButtonPress,
    IncompletePayload,
    StreamsStopped,
    button_press,
    dedup_keys,
    feedback_vote,
    is_followup,
    is_user_message,
    reacted_message,
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


REPLY = {"user": "U1", "ts": "2.2", "thread_ts": "1.1", "channel_type": "channel", "text": "and then?"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, True),
        ({"channel_type": "group"}, True),  # a private channel (message.groups)
        ({"subtype": "thread_broadcast"}, True),
        ({"subtype": "file_share"}, True),
        ({"text": "thanks <#C1|general> and https://example.com"}, True),
        ({"channel_type": "im"}, False),  # a DM: handlers.dm
        ({"channel_type": "mpim"}, False),
        ({"channel_type": None}, False),
        ({"thread_ts": None}, False),  # a top-level message
        ({"thread_ts": "2.2"}, False),  # the thread's first message
        ({"text": "<@UBOT> and then?"}, False),  # a mention: answered as app_mention
        ({"text": "<@UBOT|threadline> and <@U2>?"}, False),
        ({"text": "<@U2> what do you think?"}, False),  # for someone else
        ({"text": "<@W2|bob> ping"}, False),
        ({"text": "<!subteam^S1|@oncall> look"}, False),
        ({"text": "<!here> heads up"}, False),
        ({"text": "<!channel|channel> all"}, False),
        ({"user": BOT, "bot_id": "BBOT"}, False),
        ({"bot_id": "B2"}, False),
        ({"subtype": "bot_message", "bot_id": "B2"}, False),
        ({"subtype": "message_changed"}, False),
        ({"subtype": "message_deleted"}, False),
        ({"subtype": "channel_join"}, False),
    ],
)
def test_which_replies_are_follow_ups(change: dict[str, object], expected: bool) -> None:
    event = {k: v for k, v in {**REPLY, **change}.items() if v is not None}
    assert is_followup(event, BOT) is expected


def test_without_the_bots_id_any_mention_addresses_someone_else() -> None:
    assert is_followup(REPLY, None)
    assert not is_followup({**REPLY, "text": "<@UBOT> hi"}, None)


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


MENTION = {"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "ts": "2.0", "channel": "C1"}


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        ({"channel": None}, ("channel",)),
        ({"channel": ""}, ("channel",)),
        ({"channel": {"id": "C1"}}, ("channel",)),
        ({"user": 5, "ts": ["2.0"]}, ("user", "ts")),
        ({"thread_ts": 1.5}, ("thread_ts",)),
        ({"thread_ts": ""}, ("thread_ts",)),
    ],
)
def test_an_event_without_its_fields_names_them(change: dict[str, object], missing: tuple[str, ...]) -> None:
    with pytest.raises(IncompletePayload) as err:
        request_from_event(
            {**MENTION, **change}, source=Source.MENTION, team_id="T", bot_user_id=BOT, event_id=None
        )
    assert err.value.fields == missing and str(err.value) == ", ".join(missing)


def test_an_event_not_in_a_thread_is_answered_in_its_own() -> None:
    r = request_from_event(
        {**MENTION, "thread_ts": None}, source=Source.MENTION, team_id="T", bot_user_id=BOT, event_id=None
    )
    assert r.thread_ts == "2.0"


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        ({"user_id": "U1", "text": "hi"}, ("channel_id",)),
        ({"channel_id": "C1", "user_id": "", "text": "hi"}, ("user_id",)),
        ({"text": "hi"}, ("channel_id", "user_id")),
    ],
)
def test_a_command_without_channel_or_user_names_them(
    command: dict[str, str], missing: tuple[str, ...]
) -> None:
    with pytest.raises(IncompletePayload) as err:
        request_from_command(command)
    assert err.value.fields == missing


def test_a_command_response_url_that_is_not_text_is_none() -> None:
    assert request_from_command({"channel_id": "C1", "user_id": "U1", "response_url": 5}).response_url is None


PRESS = {
    "user": {"id": "U1"},
    "channel": {"id": "C1"},
    "container": {"message_ts": "1.0", "channel_id": "C1"},
    "message": {"ts": "1.0", "blocks": [{"type": "section"}, "junk"]},
}


def test_a_button_press() -> None:
    press = button_press(PRESS, {"value": "r1"})
    assert press == ButtonPress(
        request_id="r1", user="U1", channel="C1", message_ts="1.0", blocks=[{"type": "section"}]
    )
    # the container alone says where, as Slack sends it for ephemeral messages
    only_container = button_press({"user": {"id": "U1"}, "container": PRESS["container"]}, {"value": "r1"})
    assert (only_container.channel, only_container.message_ts, only_container.blocks) == ("C1", "1.0", [])


@pytest.mark.parametrize(
    ("body", "action", "missing"),
    [
        ({**PRESS, "user": "U1"}, {"value": "r1"}, ("user",)),
        ({**PRESS, "channel": "C1", "container": None}, {"value": "r1"}, ("channel",)),
        (PRESS, {"value": 7}, ("value",)),
        ({}, {}, ("value", "user", "channel")),
    ],
)
def test_a_button_press_without_its_fields_names_them(
    body: dict[str, object], action: dict[str, object], missing: tuple[str, ...]
) -> None:
    with pytest.raises(IncompletePayload) as err:
        button_press(body, action)
    assert err.value.fields == missing


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"type": "message", "channel": "C1", "ts": "1.0"}, ("C1", "1.0")),
        ({"type": "file", "file": "F1"}, None),
        ({"type": "message", "channel": "C1"}, None),
        ("C1", None),
        (None, None),
    ],
)
def test_reacted_message(item: object, expected: tuple[str, str] | None) -> None:
    assert reacted_message({"type": "reaction_added", "item": item}) == expected


INVISIBLE = [
    "\u200b",  # zero-width space
    "\u200d\u200c",  # zero-width joiner, non-joiner
    "\ufeff",  # byte order mark
    "\u200e\u200f",  # left-to-right, right-to-left marks
    "\u202e\u202c",  # right-to-left override, pop directional formatting
    "\u2066\u2069\u2060\u00ad",  # isolate, pop isolate, word joiner, soft hyphen
    "\U000e0041\U000e007f",  # tag characters
    "\u3164\u2800\ufe0f",  # Hangul filler, braille blank, a variation selector
    " \t\n\u00a0\u3000\u2028",  # whitespace of every kind
]


@pytest.mark.parametrize("text", [*INVISIBLE, "".join(INVISIBLE), ""])
def test_a_question_of_invisible_characters_is_empty(text: str) -> None:
    event = {**MENTION, "text": f"<@UBOT> {text} "}
    assert (
        request_from_event(event, source=Source.MENTION, team_id="T", bot_user_id=BOT, event_id=None).text
        == ""
    )
    assert request_from_command({"channel_id": "C1", "user_id": "U1", "text": text}).text == ""


@pytest.mark.parametrize(
    "text", ["?", "a\u200bb", "\u200bhi", "👍", "👩\u200d💻", "\u0301", "ـ", "\ue000", "&lt;", "。"]
)
def test_anything_visible_is_a_question(text: str) -> None:
    assert request_from_command({"channel_id": "C1", "user_id": "U1", "text": text}).text != ""


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
