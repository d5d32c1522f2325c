"""What reaches /slack/events before Bolt does (issue 14, item 6), against the real app.

The signature is checked on the raw bytes before anything parses them: an unsigned or badly signed
request gets 401 with at most a DEBUG line. A correctly signed body Slack would never send gets 400
and one WARNING line, never a 500 or a traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from urllib.parse import urlencode

import aiohttp
import pytest

from tests.conftest import Bot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack, sign_request

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def sign_bytes(secret: str, timestamp: str, raw: bytes) -> str:
    """As Slack signs: HMAC-SHA256 over ``v0:{timestamp}:`` and the raw body bytes."""
    return (
        "v0="
        + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    )


def test_signing_bytes_is_signing_the_text() -> None:
    body = '{"text": "café ☕"}'
    assert sign_bytes("s3cret", "1700000000", body.encode()) == sign_request("s3cret", 1700000000, body)


async def post(
    url: str, raw: bytes, content_type: str, *, timestamp: str | None, signature: str | None
) -> tuple[int, str]:
    headers = {"Content-Type": content_type}
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = timestamp
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    async with aiohttp.ClientSession() as http, http.post(url, data=raw, headers=headers) as resp:
        return resp.status, await resp.text()


async def post_signed(slack: FakeSlack, url: str, raw: bytes, content_type: str = JSON) -> tuple[int, str]:
    ts = str(int(time.time()))
    return await post(
        url, raw, content_type, timestamp=ts, signature=sign_bytes(slack.signing_secret, ts, raw)
    )


def records_from(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    """What the app logged at ``level`` or above (the test servers' access lines aside)."""
    return [r for r in caplog.records if r.levelno >= level and r.name != "aiohttp.access"]


def envelope(slack: FakeSlack, event: object) -> bytes:
    body = slack.event_callback({"type": "app_mention", "text": "x"})
    body["event"] = event
    return json.dumps(body).encode()


def form(**fields: str) -> bytes:
    return urlencode(fields).encode()


# -- item 6: unsigned --------------------------------------------------------------------------

UNSIGNED_BODIES = [
    (b"{bad", JSON),
    (b"[1, 2]", JSON),
    (b'"a string"', JSON),
    (b"\xff\xfe\xfa not utf-8", JSON),
    (b"command=%2Fask&text=hi", JSON),
    (b"payload=%7Bbad", FORM),
    (b'{"type": "event_callback", "event": null}', JSON),
    (b"", JSON),
]


async def test_unsigned_requests_get_401_before_anything_reads_the_body(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    now = str(int(time.time()))
    for raw, content_type in UNSIGNED_BODIES:
        # no headers at all; a forged signature; a non-numeric timestamp; a stale one, correctly signed
        assert (await post(bot.url, raw, content_type, timestamp=None, signature=None))[0] == 401
        assert (await post(bot.url, raw, content_type, timestamp=now, signature="v0=" + "0" * 64))[0] == 401
        assert (await post(bot.url, raw, content_type, timestamp="soon", signature="v0=1"))[0] == 401
        signed_soon = sign_bytes(slack.signing_secret, "soon", raw)
        assert (await post(bot.url, raw, content_type, timestamp="soon", signature=signed_soon))[0] == 401
        stale = str(int(time.time()) - 6 * 60)
        signed_stale = sign_bytes(slack.signing_secret, stale, raw)
        assert (await post(bot.url, raw, content_type, timestamp=stale, signature=signed_stale))[0] == 401
    # at most a DEBUG line each: nothing at INFO or above, no traceback, no body in the log
    assert records_from(caplog, logging.INFO) == []
    assert not any(r.exc_info for r in caplog.records)
    assert "bad" not in caplog.text
    assert not model.requests and not slack.calls_to("chat.postMessage")


# -- item 6: signed, malformed -------------------------------------------------------------------


def _signed_malformed(slack: FakeSlack) -> list[tuple[str, bytes, str]]:
    event = slack.mention_event("C1", "hi")
    good = slack.event_callback(event)
    return [
        ("invalid JSON", b"{bad", JSON),
        ("a JSON array", b"[1, 2]", JSON),
        ("a JSON string", b'"hello"', JSON),
        ("a JSON number", b"42", JSON),
        ("invalid UTF-8", b'{"type": "event_callback", "text": "\xff\xfe"}', JSON),
        ("a form body labelled JSON", form(command="/ask", text="hi", channel_id="C1", user_id="U1"), JSON),
        ("payload= with bad JSON", b"payload=%7Bbad", FORM),
        ("payload= with a JSON array", form(payload="[1]"), FORM),
        ("event: null", envelope(slack, None), JSON),
        ("event: a string", envelope(slack, "app_mention"), JSON),
        ("event: a list", envelope(slack, ["type"]), JSON),
        ("event without a type", envelope(slack, {"channel": "C1"}), JSON),
        ("event type not a string", envelope(slack, {"type": ["app_mention"]}), JSON),
        ("event channel a number", envelope(slack, {**event, "channel": 5}), JSON),
        ("authorizations a string", json.dumps({**good, "authorizations": "abc"}).encode(), JSON),
        ("authorizations of strings", json.dumps({**good, "authorizations": ["x"]}).encode(), JSON),
        ("team a number", json.dumps({**good, "team": 7}).encode(), JSON),
        ("nothing Slack sends", b"{}", JSON),
        ("an empty body", b"", JSON),
        (
            "block_actions without actions",
            form(payload=json.dumps({"type": "block_actions", "actions": []})),
            FORM,
        ),
        (
            "an action that is a string",
            form(payload=json.dumps({"type": "block_actions", "actions": ["x"]})),
            FORM,
        ),
        ("command not a string", json.dumps({"command": 5, "text": "hi"}).encode(), JSON),
    ]


async def test_signed_malformed_bodies_get_400_and_one_warning(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name, raw, content_type in _signed_malformed(slack):
        caplog.clear()
        status, _ = await post_signed(slack, bot.url, raw, content_type)
        assert status == 400, name
        warnings = records_from(caplog, logging.WARNING)
        assert len(warnings) == 1, (name, [r.getMessage() for r in warnings])
        assert warnings[0].levelno == logging.WARNING and not warnings[0].exc_info, name
        assert len(warnings[0].getMessage()) < 200, name  # one short line, not the body
        assert "\n" not in warnings[0].getMessage(), name
    assert not model.requests and not slack.calls_to("chat.postMessage")


async def test_a_well_formed_event_still_gets_answered(slack: FakeSlack, model: FakeOpenAI, bot: Bot) -> None:
    model.script(Reply.text("Yes."))
    event = slack.mention_event("C1", "still there?")
    raw = json.dumps(slack.event_callback(event)).encode()
    assert (await post_signed(slack, bot.url, raw))[0] == 200
    await slack.wait_for(lambda: any(m.text == "Yes." for m in slack.thread("C1", event["ts"])), 10)


async def test_a_slash_command_that_says_payload_is_answered(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    # Bolt's own body parser reads any form body containing "payload" as an interactivity payload
    # (and finds none): the command was dropped with a 404.
    model.script(Reply.text("A payload is the data carried."))
    status, _ = await slack.send_command(bot.url, text="what is a payload?", channel_id="C1")
    assert status == 200
    await slack.wait_for(
        lambda: any("A payload is the data carried." in m.text for m in slack.messages.values()), 10
    )


async def test_slacks_url_check_is_answered(slack: FakeSlack, bot: Bot) -> None:
    raw = json.dumps({"token": "t", "challenge": "c-123", "type": "url_verification"}).encode()
    status, text = await post_signed(slack, bot.url, raw)
    assert status == 200 and json.loads(text)["challenge"] == "c-123"


async def test_while_stopping_only_signed_requests_are_answered(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot
) -> None:
    bot.runtime.refusing_intake = True  # as Runtime.stop sets it with an in-memory queue
    command = form(**slack.command_payload(text="hi"))
    status, text = await post_signed(slack, bot.url, command, FORM)
    assert status == 200 and "restarting" in text  # Slack does not retry a command: the asker is told
    now = str(int(time.time()))
    assert (await post(bot.url, command, FORM, timestamp=now, signature="v0=" + "0" * 64))[0] == 401
    event = json.dumps(slack.event_callback(slack.mention_event("C1", "hi"))).encode()
    assert (await post_signed(slack, bot.url, event))[0] == 503  # Slack retries an event
    assert (await post_signed(slack, bot.url, b"{bad"))[0] == 400
    assert not model.requests and not slack.calls_to("chat.postMessage")
