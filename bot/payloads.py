"""Pure functions over Slack payloads (like bolt's ``request/payload_utils.py``): no I/O.

They decide which events deserve an answer and turn those into ``Request`` objects.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.files import files_from_event
from bot.jobs import Request, Source

# Subtypes of a `message` event that are still a person writing to us.
USER_MESSAGE_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})

# Characters that show nothing on their own: controls and format characters (Unicode categories Cc and
# Cf: zero-width space, joiners, BOM, bidi marks, embeddings, overrides and isolates, word joiner, soft
# hyphen, tag characters), separators, and the few letters and marks drawn blank (Hangul fillers, the
# braille blank, the combining grapheme joiner, variation selectors).
_BLANK_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_BLANK_CHARACTERS = frozenset("\u034f\u115f\u1160\u2800\u3164\uffa0") | frozenset(
    map(chr, [*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)])
)

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


class IncompletePayload(ValueError):
    """A payload without a field Slack always sends (or with one that is not text). ``str()`` names
    the fields, for one log line; the handler answers what it can and never raises after the ack."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = tuple(fields)
        super().__init__(", ".join(self.fields))


def _text(value: object) -> str | None:
    """``value`` if it is a non-empty string (an id, a ts), else ``None``."""
    return value if isinstance(value, str) and value else None


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _required(fields: Mapping[str, object]) -> list[str]:
    """The values of ``fields`` if each is a non-empty string, else ``IncompletePayload`` naming
    those that are not."""
    values = [_text(value) for value in fields.values()]
    missing = [name for name, value in zip(fields, values, strict=True) if value is None]
    if missing:
        raise IncompletePayload(missing)
    return [value for value in values if value is not None]


def is_from_bot(event: Mapping[str, Any], bot_user_id: str | None) -> bool:
    """True for messages written by a bot (any bot, including this one)."""
    if event.get("bot_id") or event.get("bot_profile"):
        return True
    if event.get("subtype") == "bot_message":
        return True
    return bot_user_id is not None and event.get("user") == bot_user_id


def is_user_message(event: Mapping[str, Any], bot_user_id: str | None) -> bool:
    """A new message a person wrote: not a bot's, not an edit, deletion, join or other system event."""
    if event.get("subtype") not in USER_MESSAGE_SUBTYPES:
        return False
    if is_from_bot(event, bot_user_id):
        return False
    return bool(event.get("user")) and bool(event.get("ts"))


# Channel types whose messages may be follow-ups (message.channels, message.groups).
FOLLOWUP_CHANNEL_TYPES = frozenset({"channel", "group"})
# What addresses a message to someone: a person's mention, a user group's, or a broadcast.
_ADDRESSED = re.compile(
    r"<@[^>|]+(?:\|[^>]*)?>|<!subteam\^[A-Z0-9]+(?:\|[^>]*)?>|<!(?:here|channel|everyone)\b"
)


def is_thread_reply(event: Mapping[str, Any]) -> bool:
    """A message in a thread that is not the thread's first message."""
    thread_ts = event.get("thread_ts")
    return isinstance(thread_ts, str) and bool(thread_ts) and thread_ts != event.get("ts")


def mentions_bot(text: str, bot_user_id: str | None) -> bool:
    return bot_user_id is not None and any(m.group(1) == bot_user_id for m in _MENTION.finditer(text))


def is_followup(event: Mapping[str, Any], bot_user_id: str | None) -> bool:
    """A reply a person wrote in a channel thread to no one in particular: a follow-up, answered
    when the bot answered in that thread. Not a top-level message, not an edit or a bot's message,
    not one that mentions the bot (Slack sends it as ``app_mention`` too, and it is answered there),
    and not one that mentions someone else (or a user group, or ``@here``): that is for them."""
    if event.get("channel_type") not in FOLLOWUP_CHANNEL_TYPES:
        return False
    if not is_user_message(event, bot_user_id) or not is_thread_reply(event):
        return False
    text = str(event.get("text") or "")
    return not mentions_bot(text, bot_user_id) and _ADDRESSED.search(text) is None


def strip_bot_mention(text: str, bot_user_id: str | None) -> str:
    """Remove mentions of the bot itself, keep other people's mentions, collapse the spaces."""

    def replace(match: re.Match[str]) -> str:
        return "" if bot_user_id is None or match.group(1) == bot_user_id else match.group(0)

    return re.sub(r"[ \t]{2,}", " ", _MENTION.sub(replace, text)).strip()


def is_blank(text: str) -> bool:
    """True when ``text`` shows nothing: empty, whitespace, or only invisible characters."""
    return all(ch in _BLANK_CHARACTERS or unicodedata.category(ch) in _BLANK_CATEGORIES for ch in text)


def question_text(text: str) -> str:
    """The question as the model reads it: Slack's escapes undone, stripped; ``""`` (help, not a
    model call) when nothing in it is visible."""
    text = slack_unescape(text).strip()
    return "" if is_blank(text) else text


def slack_unescape(text: str) -> str:
    """Slack escapes ``&``, ``<`` and ``>`` in message text; the model should read the characters."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def has_files(event: Mapping[str, Any]) -> bool:
    return bool(event.get("files")) or event.get("subtype") == "file_share"


def request_from_event(
    event: Mapping[str, Any], *, source: Source, team_id: str, bot_user_id: str | None, event_id: str | None
) -> Request:
    """The question in ``event``, answered in its thread (the message's own ts when not in one yet).
    ``IncompletePayload`` when the event lacks its channel, user or ts (or its thread_ts is not text)."""
    wanted = {"channel": event.get("channel"), "user": event.get("user"), "ts": event.get("ts")}
    if event.get("thread_ts") is not None:
        wanted["thread_ts"] = event["thread_ts"]
    channel, user, ts, *thread = _required(wanted)
    return Request(
        source=source,
        team_id=team_id,
        channel=channel,
        user=user,
        text=question_text(strip_bot_mention(str(event.get("text") or ""), bot_user_id)),
        ts=ts,
        thread_ts=thread[0] if thread else ts,
        has_files=has_files(event),
        files=files_from_event(event),
        event_id=event_id,
    )


def request_from_command(command: Mapping[str, Any]) -> Request:
    """``IncompletePayload`` when the command does not say which channel or person it came from."""
    channel, user = _required({"channel_id": command.get("channel_id"), "user_id": command.get("user_id")})
    return Request(
        source=Source.COMMAND,
        team_id=str(command.get("team_id") or ""),
        channel=channel,
        user=user,
        text=question_text(str(command.get("text") or "")),
        response_url=_text(command.get("response_url")),
    )


def request_from_shortcut(shortcut: Mapping[str, Any], *, team_id: str) -> Request:
    """The "Summarize thread" message shortcut (a ``message_action`` payload): summarize the thread of
    the message it was used on (the message's ``thread_ts`` when it is in a thread, else its own ts),
    for the person who used it. ``IncompletePayload`` without the channel, the person or the message."""
    message = _object(shortcut.get("message"))
    wanted = {
        "channel": _object(shortcut.get("channel")).get("id"),
        "user": _object(shortcut.get("user")).get("id"),
        "message ts": message.get("ts") or shortcut.get("message_ts"),
    }
    if message.get("thread_ts") is not None:
        wanted["message thread_ts"] = message["thread_ts"]
    channel, user, ts, *thread = _required(wanted)
    return Request(
        source=Source.SUMMARY,
        team_id=team_id or str(_object(shortcut.get("team")).get("id") or ""),
        channel=channel,
        user=user,
        text="",
        thread_ts=thread[0] if thread else ts,
        response_url=_text(shortcut.get("response_url")),
    )


@dataclass(frozen=True)
class ButtonPress:
    """A Stop or Retry press: the request id the button carries, who pressed it, where."""

    request_id: str
    user: str
    channel: str
    message_ts: str | None
    blocks: list[dict[str, Any]]
    text: str = ""  # the pressed message's text (a streamed answer's Markdown)


def button_press(body: Mapping[str, Any], action: Mapping[str, Any]) -> ButtonPress:
    """``IncompletePayload`` without the button's value, the presser or the channel."""
    container = _object(body.get("container"))
    message = _object(body.get("message"))
    request_id, user, channel = _required(
        {
            "value": action.get("value"),
            "user": _object(body.get("user")).get("id"),
            "channel": _object(body.get("channel")).get("id") or container.get("channel_id"),
        }
    )
    blocks = message.get("blocks")
    return ButtonPress(
        request_id=request_id,
        user=user,
        channel=channel,
        message_ts=_text(message.get("ts")) or _text(container.get("message_ts")),
        blocks=[b for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else [],
        text=_text(message.get("text")) or "",
    )


def reacted_message(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """(channel, ts) of the message a reaction event is about; ``None`` when it is not a message."""
    item = _object(event.get("item"))
    channel, ts = _text(item.get("channel")), _text(item.get("ts"))
    if item.get("type") != "message" or channel is None or ts is None:
        return None
    return channel, ts


def dedup_keys(request: Request) -> list[str]:
    """Keys under which a delivery of this request is remembered: the event id, and the message
    itself (channel + ts), since one message can arrive as both ``app_mention`` and ``message``."""
    keys = []
    if request.event_id:
        keys.append(f"event:{request.team_id}:{request.event_id}")
    if request.ts:
        keys.append(f"msg:{request.team_id}:{request.channel}:{request.ts}")
    return keys


@dataclass(frozen=True)
class StreamsStopped:
    """Slack's stop control was pressed (``agent_session_stopped``): the streams it stopped (none
    when no stream was live: the answer of the thread is stopped then)."""

    channel: str
    thread_ts: str
    user: str
    message_ts: list[str]


def streams_stopped(event: Mapping[str, Any]) -> StreamsStopped | None:
    """Parse ``agent_session_stopped``; None when it names no channel, person, or thread or stream."""
    stopped = event.get("streaming_message_ts")
    if isinstance(stopped, str):
        stopped = [stopped]
    message_ts = [str(ts) for ts in stopped or [] if ts] if isinstance(stopped, list) else []
    channel = str(event.get("channel") or event.get("channel_id") or "")
    user = event.get("user")
    user_id = str((user.get("id") if isinstance(user, Mapping) else user) or "")
    thread_ts = str(event.get("thread_ts") or "")
    if not channel or not user_id or not (message_ts or thread_ts):
        return None
    return StreamsStopped(channel=channel, thread_ts=thread_ts, user=user_id, message_ts=message_ts)


def feedback_vote(action: Mapping[str, Any]) -> str | None:
    """The vote a click on our feedback buttons casts ("up"/"down"), from its value ``up:<request>``."""
    vote = str(action.get("value") or "").split(":", 1)[0]
    return vote if vote in ("up", "down") else None
