"""What the handlers need from the engine."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from slack_bolt.context.async_context import AsyncBoltContext

from bot.jobs import Request, Source
from bot.payloads import IncompletePayload, request_from_event

logger = logging.getLogger(__name__)


class Intake(Protocol):
    async def submit(self, request: Request) -> None:
        """Accept a question (dedup, placeholder, queue)."""
        ...

    async def submit_followup(self, request: Request) -> None:
        """Accept a reply in a channel thread as a question if the bot answered in that thread (and
        follow-ups are on); else ignore it quietly. Then as ``submit``."""
        ...

    async def help(self, request: Request) -> None:
        """Answer an empty question with a short help text."""
        ...

    async def stop(self, *, request_id: str, user: str, channel: str) -> None:
        """The Stop button was pressed by ``user``."""
        ...

    async def retry(
        self,
        *,
        request_id: str,
        user: str,
        channel: str,
        message_ts: str,
        blocks: list[dict[str, Any]],
        text: str = "",
    ) -> None:
        """The Retry button was pressed on the message ``message_ts`` (its ``blocks`` and ``text``)."""
        ...

    async def stop_streams(self, *, channel: str, thread_ts: str, message_ts: list[str], user: str) -> None:
        """Slack's stop control was pressed by ``user`` on the native streams ``message_ts`` (none:
        on the answer of the thread ``thread_ts`` that has no stream yet)."""
        ...

    async def feedback_button(self, *, team_id: str, channel: str, ts: str, user: str, vote: str) -> None:
        """``user`` clicked a feedback button ("up"/"down") under the answer message ``ts``."""
        ...

    async def feedback(
        self, *, team_id: str, channel: str, ts: str, user: str, reaction: str, removed: bool = False
    ) -> None:
        """``user`` added ``reaction`` to the message ``ts`` (or removed it, ``removed``): 👍/👎 on an
        answer is a vote, counted once per user and answer, and withdrawn when removed."""
        ...


def team_id_of(context: AsyncBoltContext, body: Mapping[str, Any]) -> str:
    return str(context.team_id or body.get("team_id") or context.enterprise_id or "")


def question_in(
    event: Mapping[str, Any], body: Mapping[str, Any], context: AsyncBoltContext, source: Source
) -> Request | None:
    """The question in a message event; ``None`` (and one log line) when the event lacks a field
    Slack always sends: with no channel or ts there is nowhere to answer, and the event is acked."""
    try:
        return request_from_event(
            event,
            source=source,
            team_id=team_id_of(context, body),
            bot_user_id=context.bot_user_id,
            event_id=event_id if isinstance(event_id := body.get("event_id"), str) else None,
        )
    except IncompletePayload as err:
        logger.warning("a %s event arrived without %s: ignored", event.get("type"), err)
        return None
