"""How Slack's answers are read at the boundary: ``SlackApiError`` and aiohttp's exceptions become
``bot.errors.SlackError``/``CannotPost`` here, once; and the metadata that names an answer's messages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.errors import CannotPost, SlackError

CANNOT_POST_ERRORS = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "restricted_action", "cannot_reply_to_message"}
)
METADATA_EVENT = "threadline_answer"


def _retry_after(err: SlackApiError) -> float | None:
    headers = getattr(err.response, "headers", None) or {}
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return float(value if isinstance(value, str) else value[0])
            except (TypeError, ValueError):
                return None
    return None


def translate(method: str, err: SlackApiError) -> SlackError:
    status = getattr(err.response, "status_code", 200)
    data = getattr(err.response, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    code = code or ("ratelimited" if status == 429 else f"http_{status}")
    cls = CannotPost if code in CANNOT_POST_ERRORS else SlackError
    return cls(
        method, code, retry_after=_retry_after(err) if status == 429 else None, transient=status >= 500
    )


@contextlib.contextmanager
def mapped(method: str) -> Iterator[None]:
    """slack_sdk's and aiohttp's exceptions become ``SlackError`` here, once."""
    try:
        yield
    except SlackApiError as err:
        raise translate(method, err) from None
    except (aiohttp.ClientError, TimeoutError) as err:
        raise SlackError(method, f"connection error ({type(err).__name__})", transient=True) from None


def answer_metadata(request_id: str, piece: int) -> dict[str, Any]:
    """The message metadata naming piece ``piece`` of ``request_id``'s answer."""
    return {"event_type": METADATA_EVENT, "event_payload": {"request_id": request_id, "piece": piece}}


def answer_pieces(messages: Iterable[dict[str, Any]], request_id: str) -> dict[int, str]:
    """Among ``messages``, those of ``request_id``'s answer (by their metadata): piece -> ts (the
    first message of each piece)."""
    found: dict[int, str] = {}
    for message in messages:
        piece = piece_of(message, request_id)
        if piece is not None:
            found.setdefault(piece, str(message["ts"]))
    return found


def piece_of(message: dict[str, Any], request_id: str) -> int | None:
    """Which piece of ``request_id``'s answer ``message`` is, by its metadata; None if none."""
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    if meta.get("event_type") == METADATA_EVENT and payload.get("request_id") == request_id:
        return int(payload.get("piece", 0))
    return None
