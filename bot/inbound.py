"""What arrives at ``/slack/events``, checked before anything trusts it (pure: no I/O).

1. ``signature_ok``: Slack's signature, on the raw bytes, before one byte is parsed. slack_sdk's
   ``SignatureVerifier`` computes the same HMAC but cannot take hostile input as is: it ``int()``s the
   timestamp header (``ValueError`` on ``soon``) and decodes a bytes body strictly
   (``UnicodeDecodeError``), so a forged request became a 500 and a traceback.
2. ``parse_body``: a correctly signed body, decoded and parsed into the shape Slack sends and Bolt
   relies on (Bolt's extractors and matchers index it without checking types: ``"event": null``, an
   action that is a string, ``"team": 7`` each raised inside Bolt). What does not fit raises
   ``MalformedBody`` with a short reason for one log line; the reason never quotes the body.

The form rules follow Bolt's ``parse_body`` (JSON when labelled so or starting with ``{``, else form
fields, an interactivity ``payload`` field holding JSON) with one correction: Bolt takes any form body
that merely *contains* the text ``payload`` for an interactivity payload, so ``/ask what is a payload?``
was read as ``{}`` and dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

# Slack: reject a request whose timestamp is more than five minutes from now (replays).
SIGNATURE_MAX_AGE_SECONDS = 5 * 60
# Slack's form bodies carry a dozen fields (a slash command) or one (``payload``, ``ssl_check``).
MAX_FORM_FIELDS = 100

# The payloads this app takes besides slash commands and SSL checks: Events API envelopes (with
# Slack's URL check and its rate-limit notice), button presses and message shortcuts (``message_action``:
# "Summarize thread"). Bolt would answer anything else 404
# after a long warning; some (a workflow step without its step, a view without its type) it cannot
# even read.
TYPES = frozenset(
    {"event_callback", "url_verification", "app_rate_limited", "block_actions", "message_action"}
)

_ID_HOLDERS = ("user", "channel", "team", "enterprise")  # each a string id or an object with an "id"
_STRINGS = ("type", "command", "callback_id", "action_id", "block_id", "response_url")
# Bolt looks inside these when they are objects.
_NESTED = ("event", "message", "previous_message", "item", "assistant_thread", "user", "view")
_MAX_DEPTH = 5


class MalformedBody(ValueError):
    """A correctly signed body that is not something Slack sends. ``str()`` is a short reason."""


def signature_ok(
    raw: bytes, *, timestamp: str | None, signature: str | None, secret: str, now: float
) -> bool:
    """Slack's ``v0`` signature of ``raw`` at ``timestamp``, within five minutes of ``now``."""
    if not secret or not timestamp or not signature:
        return False
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > SIGNATURE_MAX_AGE_SECONDS:
        return False
    base = b"v0:" + timestamp.encode() + b":" + raw
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def parse_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The body as an object, checked against the shape Bolt relies on; ``MalformedBody`` if not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("not UTF-8") from None
    if not text:
        raise MalformedBody("empty body")
    kind = media_type(content_type)
    if kind == "application/json" or (kind != "application/x-www-form-urlencoded" and text.startswith("{")):
        body = _json_object(text, "body")
    else:
        body = _form(text)
    check_shape(body)
    return body


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as err:
        reason = err.msg if isinstance(err, json.JSONDecodeError) else "invalid"
        raise MalformedBody(f"{what} is not JSON ({reason})") from None
    except RecursionError:
        raise MalformedBody(f"{what} is JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise MalformedBody(f"{what} is JSON but not an object ({_kind(value)})")
    return value


def _form(text: str) -> dict[str, Any]:
    if text.count("&") >= MAX_FORM_FIELDS:
        raise MalformedBody("too many form fields")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise MalformedBody("neither JSON nor form fields") from None
    fields = dict(pairs)
    if "payload" in fields:
        return _json_object(fields["payload"], "payload")
    return dict(fields)


def check_shape(body: Mapping[str, Any]) -> None:
    """``MalformedBody`` unless ``body`` is a payload this app takes, typed as Bolt reads it."""
    if "command" in body:
        if not isinstance(body["command"], str):
            raise MalformedBody(f"command is {_kind(body['command'])}, not a string")
    elif "ssl_check" not in body and not (isinstance(body.get("type"), str) and body["type"] in TYPES):
        raise MalformedBody(f"not a payload this app takes ({_type_name(body.get('type'))})")
    if "event" in body or body.get("type") == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict):
            raise MalformedBody(f"event is {_kind(event)}, not an object")
        if not isinstance(event.get("type"), str):
            raise MalformedBody("event has no type")
    _check_object(body, "body")
    if "response_urls" in body and not _list_of_objects(body["response_urls"]):
        raise MalformedBody("response_urls is not a list of objects")
    if "actions" in body:
        actions = body["actions"]
        if not _list_of_objects(actions) or (body.get("type") == "block_actions" and not actions):
            raise MalformedBody("actions is not a list of objects")
        for action in actions:
            _check_strings(action, "an action")
            if not isinstance(action.get("action_id"), str):
                raise MalformedBody("an action has no action_id")
    if "view" in body and not isinstance(body["view"], dict):
        raise MalformedBody("view is not an object")


def _check_object(obj: Mapping[str, Any], where: str, depth: int = 0) -> None:
    """Bolt's extractors read ``obj``'s ids and recurse into its first authorization and its nested
    messages, items and event: each of those must be typed as they expect, at any depth."""
    if depth > _MAX_DEPTH:
        raise MalformedBody(f"{where} is nested too deeply")
    _check_ids(obj, where)
    _check_strings(obj, where)
    authorizations = obj.get("authorizations")
    if authorizations is not None:
        if not _list_of_objects(authorizations):
            raise MalformedBody(f"{where}.authorizations is not a list of objects")
        for authorization in authorizations[:1]:  # Bolt reads the first
            _check_object(authorization, f"{where}.authorizations[0]", depth + 1)
    for key in _NESTED:
        nested = obj.get(key)
        if isinstance(nested, dict):
            _check_object(nested, f"{where}.{key}", depth + 1)


def _check_ids(obj: Mapping[str, Any], where: str) -> None:
    for key in _ID_HOLDERS:
        if not isinstance(obj.get(key), str | dict | None):
            raise MalformedBody(f"{where}.{key} is {_kind(obj.get(key))}")


def _check_strings(obj: Mapping[str, Any], where: str) -> None:
    for key in _STRINGS:
        if not isinstance(obj.get(key), str | None):
            raise MalformedBody(f"{where}.{key} is {_kind(obj.get(key))}, not a string")


def _list_of_objects(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _type_name(value: object) -> str:
    """A payload type for the log: Slack's type names are short snake_case; anything else is not."""
    if value is None:
        return "no type"
    if isinstance(value, str) and re.fullmatch(r"[a-z_]{1,40}", value):
        return f"type {value}"
    return "an unknown type"


def _kind(value: object) -> str:
    """The JSON name of ``value``'s type (never the value itself: reasons are logged)."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, float) else "something else")
