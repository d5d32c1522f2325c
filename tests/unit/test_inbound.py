"""``bot.inbound``: the signature on the raw bytes, then the body's shape (issue 14, item 6)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_bolt.listener_matcher import builtins
from slack_bolt.middleware.ignoring_self_events.ignoring_self_events import IgnoringSelfEvents
from slack_bolt.request import payload_utils
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import Clock, SignatureVerifier

from bot.inbound import MalformedBody, parse_body, signature_ok
from tests.e2e.test_inbound_http import sign_bytes

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_700_000_000.0
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


class FixedClock(Clock):
    def now(self) -> float:
        return NOW


def ok(raw: bytes, timestamp: str | None, signature: str | None, secret: str = SECRET) -> bool:
    return signature_ok(raw, timestamp=timestamp, signature=signature, secret=secret, now=NOW)


# -- the signature ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", ['{"type": "event_callback"}', "command=%2Fask&text=caf%C3%A9", "é ☕ 𝄞", ""]
)
@pytest.mark.parametrize("age", [0, 299, -299, 301, -301])
def test_agrees_with_slack_sdks_verifier_on_what_it_can_read(body: str, age: int) -> None:
    timestamp = str(int(NOW) - age)
    verifier = SignatureVerifier(SECRET, clock=FixedClock())
    for signature in (verifier.generate_signature(timestamp=timestamp, body=body), "v0=" + "0" * 64):
        expected = verifier.is_valid(body, timestamp, signature)
        assert ok(body.encode(), timestamp, signature) is expected
    assert ok(body.encode(), timestamp, verifier.generate_signature(timestamp=timestamp, body=body)) is (
        abs(age) <= 300
    )


def test_invalid_utf8_is_verified_as_bytes() -> None:
    raw = b'{"text": "\xff\xfe"}'
    timestamp = str(int(NOW))
    assert ok(raw, timestamp, sign_bytes(SECRET, timestamp, raw))
    assert not ok(raw + b" ", timestamp, sign_bytes(SECRET, timestamp, raw))


@pytest.mark.parametrize(
    "timestamp", [None, "", "soon", "1.7e9", "-5", " 1700000000", "１７００００００００", "9" * 5000, "0x10"]
)
def test_a_timestamp_that_is_not_seconds_is_refused_not_raised(timestamp: str | None) -> None:
    raw = b"{}"
    signature = sign_bytes(SECRET, timestamp or "", raw)
    assert not ok(raw, timestamp, signature)


def test_no_secret_no_signature_nothing_valid() -> None:
    raw, timestamp = b"{}", str(int(NOW))
    assert not ok(raw, timestamp, sign_bytes("", timestamp, raw), secret="")
    assert not ok(raw, timestamp, None)
    assert not ok(raw, timestamp, "")
    assert not ok(raw, timestamp, "v0=é\udcff")  # a header that is not even ASCII


# -- the body's shape ---------------------------------------------------------------------------


def event_body(event: Any, **top: Any) -> bytes:
    body = {
        "type": "event_callback",
        "team_id": "T1",
        "event": event,
        "event_id": "Ev1",
        "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
        **top,
    }
    return json.dumps(body).encode()


MENTION = {"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "ts": "1.0", "channel": "C1"}


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        (event_body(MENTION), JSON, "event_callback"),
        (event_body(MENTION), "application/json; charset=utf-8", "event_callback"),
        (event_body(MENTION), None, "event_callback"),  # unlabelled JSON, as Bolt reads it
        (urlencode({"command": "/ask", "text": "what is a payload?"}).encode(), FORM, "/ask"),
        (
            urlencode(
                {"payload": json.dumps({"type": "block_actions", "actions": [{"action_id": "a"}]})}
            ).encode(),
            FORM,
            "block_actions",
        ),
        (b"ssl_check=1&token=x", FORM, None),
        (b'{"type": "url_verification", "challenge": "c"}', JSON, "url_verification"),
    ],
)
def test_what_slack_sends_is_read(raw: bytes, content_type: str | None, expected: str | None) -> None:
    body = parse_body(raw, content_type)
    assert (body.get("type") or body.get("command")) == expected


@pytest.mark.parametrize(
    ("raw", "content_type", "reason"),
    [
        (b"", JSON, "empty"),
        (b"\xff{}", JSON, "UTF-8"),
        (b"{bad", JSON, "not JSON"),
        (b"[1]", JSON, "not an object (a list)"),
        (b'"s"', JSON, "a string"),
        (b"null", JSON, "null"),
        (b"[" * 100_000, JSON, "JSON"),
        (b"command=%2Fask&text=hi", JSON, "not JSON"),  # a form body labelled JSON
        (b"payload=%7Bbad", FORM, "payload is not JSON"),
        (b"payload=5", FORM, "payload is JSON but not an object"),
        (b"just some text", FORM, "form"),
        (b"a=1&" * 200, FORM, "too many"),
        (b"{}", JSON, "not a payload this app takes (no type)"),
        (b"text=hi", FORM, "(no type)"),
        (b'{"type": "view_submission", "view": {}}', JSON, "(type view_submission)"),
        (b'{"type": "workflow_step_edit", "callback_id": "x"}', JSON, "(type workflow_step_edit)"),
        (b'{"type": "Robert\'); DROP TABLE"}', JSON, "(an unknown type)"),
        (event_body(None), JSON, "event is null"),
        (event_body("app_mention"), JSON, "event is a string"),
        (event_body({"channel": "C1"}), JSON, "event has no type"),
        (event_body({**MENTION, "type": 1}), JSON, "event has no type"),
        (event_body({**MENTION, "user": 5}), JSON, "event.user is a number"),
        (event_body({**MENTION, "channel": ["C1"]}), JSON, "event.channel is a list"),
        (event_body({**MENTION, "message": {"user": True}}), JSON, "event.message.user is a boolean"),
        (event_body(MENTION, authorizations="x"), JSON, "authorizations"),
        (event_body(MENTION, authorizations=[["x"]]), JSON, "authorizations"),
        (event_body(MENTION, authorizations=[{"team": 1}]), JSON, "authorizations[0].team is a number"),
        (event_body(MENTION, team=7), JSON, "body.team is a number"),
        (event_body(MENTION, enterprise=[]), JSON, "body.enterprise is a list"),
        (event_body(MENTION, response_urls="u"), JSON, "response_urls"),
        (json.dumps({"type": "event_callback"}).encode(), JSON, "event is null"),
        (json.dumps({"command": 5}).encode(), JSON, "command is a number"),
        (json.dumps({"type": ["event_callback"]}).encode(), JSON, "(an unknown type)"),
        (json.dumps({"type": "block_actions", "actions": []}).encode(), JSON, "actions"),
        (json.dumps({"type": "block_actions", "actions": "x"}).encode(), JSON, "actions"),
        (json.dumps({"type": "block_actions", "actions": [{"action_id": 3}]}).encode(), JSON, "action_id"),
        (json.dumps({"type": "block_actions", "actions": [{"value": "r1"}]}).encode(), JSON, "no action_id"),
        (
            json.dumps({"type": "block_actions", "actions": [{"action_id": "a"}], "view": "v"}).encode(),
            JSON,
            "view",
        ),
        (json.dumps({"command": "/ask", "callback_id": {}}).encode(), JSON, "callback_id is an object"),
    ],
)
def test_what_slack_never_sends_is_refused_with_a_reason(raw: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(MalformedBody) as refused:
        parse_body(raw, content_type)
    assert reason in str(refused.value)
    assert len(str(refused.value)) < 100


def test_a_reason_never_quotes_the_body() -> None:
    secret_text = "hunter2-very-private"
    for raw in (
        b"{" + secret_text.encode(),
        event_body({**MENTION, "channel": [secret_text]}),
        urlencode({"payload": "{" + secret_text}).encode(),
    ):
        with pytest.raises(MalformedBody) as refused:
            parse_body(raw, JSON if raw.startswith(b"{") else FORM)
        assert "hunter2" not in str(refused.value)


# -- whatever passes, Bolt can read -------------------------------------------------------------

KEYS = [
    "type", "event", "command", "text", "user", "channel", "team", "enterprise", "authorizations",
    "actions", "action_id", "block_id", "callback_id", "view", "message", "previous_message", "item",
    "response_url", "response_urls", "is_ext_shared_channel", "subtype", "ts", "thread_ts", "bot_id",
    "channel_type", "user_team", "id", "team_id", "user_id", "channel_id", "workflow_step",
]  # fmt: skip
TYPES = ["event_callback", "block_actions", "interactive_message", "view_submission", "shortcut",
         "message_action", "app_mention", "message", "reaction_added", "workflow_step_edit",
         "url_verification", "app_rate_limited"]  # fmt: skip
leaves = st.none() | st.booleans() | st.integers() | st.sampled_from([*TYPES, "C1", "U1", "1.0", "/ask", ""])
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
    max_leaves=12,
)
TEMPLATES: list[dict[str, Any]] = [
    json.loads(event_body(MENTION)),
    json.loads(event_body({**MENTION, "type": "message", "channel_type": "im", "thread_ts": "0.5"})),
    json.loads(event_body({"type": "reaction_added", "user": "U1", "reaction": "+1",
                           "item": {"type": "message", "channel": "C1", "ts": "1.0"}})),
    {"command": "/ask", "text": "hi", "channel_id": "C1", "user_id": "U1", "team_id": "T1",
     "response_url": "https://hooks.example/1"},
    {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"}, "channel": {"id": "C1"},
     "message": {"ts": "1.0", "blocks": []}, "container": {"channel_id": "C1", "message_ts": "1.0"},
     "actions": [{"action_id": "threadline_stop", "block_id": "b", "value": "r1"}]},
    {"type": "url_verification", "challenge": "c", "token": "t"},
    {"type": "message_action", "callback_id": "summarize_thread", "trigger_id": "1.2.3", "team": {"id": "T1"},
     "user": {"id": "U1"}, "channel": {"id": "C1"}, "message_ts": "1.0",
     "message": {"ts": "1.0", "thread_ts": "0.5", "text": "hi"}, "response_url": "https://hooks.example/2"},
]  # fmt: skip
WHERE = ["", "event", "event.message", "event.item", "actions.0", "authorizations.0", "message", "user"]
DELETE = object()
mutations = st.lists(
    st.tuples(
        st.sampled_from(WHERE), st.sampled_from(KEYS), values | st.sampled_from(TYPES) | st.just(DELETE)
    ),
    max_size=4,
)


def mutated(template: dict[str, Any], changes: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """``template`` with each change applied where its container exists (a value set, or deleted)."""
    body: dict[str, Any] = json.loads(json.dumps(template))
    for where, key, value in changes:
        target: Any = body
        for step in where.split(".") if where else []:
            if isinstance(target, dict):
                target = target.get(step)
            elif isinstance(target, list) and step.isdigit() and len(target) > int(step):
                target = target[int(step)]
            else:
                target = None
        if isinstance(target, dict):
            if value is DELETE:
                target.pop(key, None)
            else:
                target[key] = value
    return body


bodies = st.builds(mutated, st.sampled_from(TEMPLATES), mutations)

# The matchers of the listeners handlers/ registers, plus the arguments Bolt builds for each listener.
MATCHERS = [
    builtins.event("app_mention"),
    builtins.event("message"),
    builtins.event("reaction_added"),
    builtins.event(re.compile(r".*")),
    builtins.command("/ask"),
    builtins.command(re.compile(r".*")),
    builtins.action("threadline_stop"),
    builtins.action(re.compile(r".*")),
    builtins.shortcut("summarize_thread"),
    builtins.shortcut(re.compile(r".*")),
]
PAYLOADS = [getattr(payload_utils, f"to_{name}") for name in ("event", "message", "command", "action", "view",
                                                                "options", "shortcut", "step")]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(body=bodies)
def test_whatever_passes_the_check_bolt_reads_without_raising(body: dict[str, Any]) -> None:
    try:
        parsed = parse_body(json.dumps(body).encode(), JSON)
    except MalformedBody:
        return
    request = AsyncBoltRequest(body=parsed, mode="socket_mode")
    for matcher in MATCHERS:
        matcher.func(body=request.body)  # type: ignore[attr-defined]
    for to_payload in PAYLOADS:
        to_payload(request.body)
    request.body.get("event", {}).get("bot_id")  # as IgnoringSelfEvents reads it
    IgnoringSelfEvents._is_self_event(None, request.context.user_id, None, request.body)  # type: ignore[arg-type]
