"""Posting an answer's messages so that a retry never posts twice.

``chat.postMessage`` is not idempotent: a post whose response was lost (a connection reset, a 500 after
the write) may have made its message. Every post of an answer carries message metadata naming its
request and piece (``bot.gateway.errors.answer_metadata``), so before posting again the thread (or, for
a top-level message, the channel's newest messages) is searched for it. The recovery paths (a resumed
job, a placeholder whose replica died) use the same lookups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.constants import MAX_RATE_LIMITED
from bot.errors import SlackError
from bot.gateway.errors import answer_pieces, mapped

if TYPE_CHECKING:
    from bot.gateway.client import SlackGateway

logger = logging.getLogger(__name__)


class AnswerPosts:
    """The answer posts of one gateway: a post is tried up to ``attempts`` times on server errors and
    lost responses (``retry_base`` seconds times the attempt between), and a rate-limited one up to
    ``MAX_RATE_LIMITED`` times. ``history`` reads a channel's newest messages (a client whose
    rate-limit handler retries the read)."""

    def __init__(
        self, gateway: SlackGateway, *, history: AsyncWebClient, attempts: int, retry_base: float
    ) -> None:
        self._gateway = gateway
        self._history = history
        self._attempts = max(1, attempts)
        self._retry_base = retry_base

    async def post_answer(
        self,
        *,
        channel: str,
        text: str,
        request_id: str,
        thread_ts: str | None = None,
        piece: int = 0,
        blocks: list[dict[str, Any]] | None = None,
        team_id: str = "",
    ) -> str:
        """Post a message of an answer (``request_id``, ``piece``), retrying what may succeed later:
        a rate limit after its Retry-After (up to ``MAX_RATE_LIMITED`` times), a server error or a
        lost response up to ``attempts`` times. ``chat.postMessage`` is not idempotent, so before
        posting again after a server error the thread (or, for a top-level message, the channel's
        newest messages) is searched for the message by its metadata: a retry never posts twice."""
        failures = rate_limited = 0
        while True:
            try:
                return await self._gateway.post_message(
                    channel=channel,
                    text=text,
                    thread_ts=thread_ts,
                    blocks=blocks,
                    request_id=request_id,
                    piece=piece,
                )
            except SlackError as err:
                if err.retry_after is not None and rate_limited < MAX_RATE_LIMITED:
                    # The channel's posts are paused (every post waits, not just this one): this
                    # one is asked again in line with the others.
                    rate_limited += 1
                    continue
                failures += 1
                if not err.transient:
                    raise
                if failures >= self._attempts:
                    # The last attempt may have taken effect although its answer was lost (a 500
                    # after the write): look before giving up, or a stray message stays behind.
                    found = await self.find_posted_anywhere(
                        channel=channel,
                        thread_ts=thread_ts,
                        request_id=request_id,
                        piece=piece,
                        team_id=team_id,
                    )
                    if found is not None:
                        return found
                    raise
                logger.warning(
                    "chat.postMessage failed (%s), attempt %d of %d", err.error, failures, self._attempts
                )
            await asyncio.sleep(self._retry_base * failures)
            found = await self.find_posted_anywhere(
                channel=channel, thread_ts=thread_ts, request_id=request_id, piece=piece, team_id=team_id
            )
            if found is not None:
                return found

    async def find_posted_anywhere(
        self, *, channel: str, thread_ts: str | None, request_id: str, piece: int = 0, team_id: str = ""
    ) -> str | None:
        """The message posted for (request_id, piece) in a thread, or top-level when no thread (a post
        whose answer was lost may have made one); None if there is none or Slack could not be asked."""
        with contextlib.suppress(SlackError):
            if thread_ts is not None:
                pieces = await self.posted_pieces(
                    channel=channel, thread_ts=thread_ts, request_id=request_id, team_id=team_id
                )
                return pieces.get(piece)
            return await self.find_posted_top_level(channel=channel, request_id=request_id, piece=piece)
        return None

    async def find_posted_top_level(self, *, channel: str, request_id: str, piece: int = 0) -> str | None:
        """The ts of a top-level message this bot posted for (request_id, piece), among the
        channel's newest messages (a post whose response was lost is seconds old)."""
        with mapped("conversations.history"):
            response = await self._history.conversations_history(
                channel=channel, limit=50, include_all_metadata=True
            )
        data = response.data if isinstance(response.data, dict) else {}
        return answer_pieces(data.get("messages") or [], request_id).get(piece)

    async def posted_pieces(
        self, *, channel: str, thread_ts: str, request_id: str, team_id: str = ""
    ) -> dict[int, str]:
        """The messages this bot posted for ``request_id`` in a thread (by their metadata): piece
        number -> ts. ``team_id``: whose thread-read budget the reading takes."""
        messages = await self._gateway.thread_messages(
            channel=channel, thread_ts=thread_ts, team_id=team_id, metadata=True
        )
        return answer_pieces(messages, request_id)
