"""Pure functions over Slack payloads (like bolt's ``request/payload_utils.py``): no I/O.

They decide which events deserve an answer and turn those into ``Request`` objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.jobs import Request, Source

# Subtypes of a `message` event that are still a person writing to us.
USER_MESSAGE_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


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


def strip_bot_mention(text: str, bot_user_id: str | None) -> str:
    """Remove mentions of the bot itself, keep other people's mentions, collapse the spaces."""

    def replace(match: re.Match[str]) -> str:
        return "" if bot_user_id is None or match.group(1) == bot_user_id else match.group(0)

    return re.sub(r"[ \t]{2,}", " ", _MENTION.sub(replace, text)).strip()


def slack_unescape(text: str) -> str:
    """Slack escapes ``&``, ``<`` and ``>`` in message text; the model should read the characters."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def has_files(event: Mapping[str, Any]) -> bool:
    return bool(event.get("files")) or event.get("subtype") == "file_share"


def thread_root(event: Mapping[str, Any]) -> str:
    """The ts of the thread an answer to ``event`` belongs in."""
    return str(event.get("thread_ts") or event["ts"])


def request_from_event(
    event: Mapping[str, Any], *, source: Source, team_id: str, bot_user_id: str | None, event_id: str | None
) -> Request:
    return Request(
        source=source,
        team_id=team_id,
        channel=str(event["channel"]),
        user=str(event["user"]),
        text=slack_unescape(strip_bot_mention(str(event.get("text") or ""), bot_user_id)),
        ts=str(event["ts"]),
        thread_ts=thread_root(event),
        has_files=has_files(event),
        event_id=event_id,
    )


def request_from_command(command: Mapping[str, Any]) -> Request:
    return Request(
        source=Source.COMMAND,
        team_id=str(command.get("team_id") or ""),
        channel=str(command["channel_id"]),
        user=str(command["user_id"]),
        text=slack_unescape(str(command.get("text") or "").strip()),
        response_url=command.get("response_url") or None,
    )


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
