"""The answer's controls: Stop (cancels a generation at once, on whichever replica streams it; only
the asker or an admin) and Retry (queues a failed question again in its thread, once per button)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from bot.errors import SlackError
from bot.gateway import SlackGateway
from bot.jobs import Request, Source, new_request_id
from bot.replies import Replies
from bot.signals import Signals
from bot.store.base import ConversationStore, Deduplicator, StoreUnavailable
from bot.texts import RETRIED_PLACEHOLDER, RETRY_TOO_OLD, stop_refused

logger = logging.getLogger(__name__)


class Controls:
    def __init__(
        self,
        *,
        gateway: SlackGateway,
        replies: Replies,
        signals: Signals,
        dedup: Deduplicator,
        store: ConversationStore,
        resubmit: Callable[[Request], Awaitable[None]],
        on_retry: Callable[[Request], None] | None = None,
    ) -> None:
        self.gateway = gateway
        self.replies = replies
        self.signals = signals
        self.dedup = dedup
        self.store = store
        self._resubmit = resubmit
        self._on_retry = on_retry  # the status reactions learn that the ⚠️ shown is this one's
        self._live: dict[str, tuple[Request, asyncio.Event]] = {}  # answers streaming here now
        self._stopped_by: dict[str, str] = {}

    @contextlib.contextmanager
    def live(self, request: Request) -> Iterator[asyncio.Event]:
        """While the answer streams here: the event is set when someone allowed presses Stop."""
        stopped = asyncio.Event()
        self._live[request.id] = (request, stopped)
        try:
            yield stopped
        finally:
            self._live.pop(request.id, None)
            self._stopped_by.pop(request.id, None)

    def stopped_by(self, request_id: str) -> str | None:
        return self._stopped_by.get(request_id)

    async def stop(self, *, request_id: str, user: str, channel: str) -> None:
        """The Stop button: handled here if this replica streams the answer, else signalled to all."""
        if request_id in self._live:
            await self.stop_local(request_id, user, channel)
            return
        try:
            await self.signals.publish_stop(request_id=request_id, user=user, channel=channel)
        except Exception:
            logger.warning("could not signal a stop for request %s", request_id, exc_info=True)

    async def stop_local(self, request_id: str, user: str, channel: str) -> None:
        """Stop an answer streaming in this process: only the asker (or a workspace admin) may."""
        live = self._live.get(request_id)
        if live is None:
            return  # already finished, or streaming on another replica
        request, stopped = live
        if user != request.user:
            try:
                allowed = await self.gateway.is_admin(user=user)
            except SlackError:
                allowed = False
            if not allowed:
                await self.replies.ephemeral(
                    channel, user, stop_refused(request.user), thread_ts=request.thread_ts
                )
                return
        logger.info("request %s stopped by %s", request_id, user)
        self._stopped_by[request_id] = user
        stopped.set()

    async def retry(
        self, *, request_id: str, user: str, channel: str, message_ts: str, blocks: list[dict[str, Any]]
    ) -> None:
        """The Retry button: queue the same question again, in the same thread (once per button,
        however often it is pressed before it disappears, and on whichever replica)."""
        try:
            if not await self.dedup.first_time(keys=[f"retry:{request_id}:{message_ts}"]):
                logger.info("request %s: Retry pressed again, ignored", request_id)
                return
        except StoreUnavailable:
            pass  # a second retry is better than none
        data = await self.store.recall_request(request_id=request_id)
        if data is None:
            await self.replies.ephemeral(channel, user, RETRY_TOO_OLD)
            return
        original = Request.from_dict(data)
        # Remove the Retry button (keep the answer's text), so it is pressed once.
        kept = [b for b in blocks if b.get("type") != "actions"]
        text = "\n\n".join(str((b.get("text") or {}).get("text", "")) for b in kept) or RETRIED_PLACEHOLDER
        try:
            await self.gateway.update_message(
                team_id=original.team_id, channel=channel, ts=message_ts, text=text, blocks=kept or None
            )
        except SlackError as err:
            logger.info("could not remove the Retry button: %s", err.error)
        thread = original.thread_ts or message_ts
        source = Source.MENTION if original.source is Source.COMMAND else original.source
        again = dataclasses.replace(
            original, source=source, thread_ts=thread, response_url=None, event_id=None, id=new_request_id()
        )
        logger.info("request %s retried as %s by %s", request_id, again.id, user)
        if self._on_retry is not None:
            self._on_retry(again)
        await self._resubmit(again)
