"""The answer's controls: Stop (cancels a generation at once, on whichever replica streams it; only
the asker or an admin) and Retry (queues a failed question again in its thread, once per button).

Stop comes from our Stop button (it names the request) or, on a native stream, from Slack's own stop
control (``agent_session_stopped``, which names the streamed messages): the streams of the answers
running here are known by their message ts."""

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

STREAM_PREFIX = "stream:"  # a stop signal naming a streamed message instead of a request
THREAD_PREFIX = "thread:"  # ... or the thread of an answer that has no stream yet


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
        self._streams: dict[tuple[str, str], str] = {}  # (channel, streamed message ts) -> request id
        self._refused: dict[tuple[str, str], Callable[[str], None]] = {}  # told when a Stop is refused

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
            for key in [k for k, v in self._streams.items() if v == request.id]:
                del self._streams[key]
                self._refused.pop(key, None)

    def streaming(
        self, request_id: str, channel: str, ts: str, refused: Callable[[str], None] | None = None
    ) -> None:
        """A native stream of a live answer started: Slack's stop control names it by ``ts``.
        ``refused(ts)`` is told when someone not allowed pressed it (Slack ended the stream anyway,
        so the answer goes on in a new one)."""
        if request_id in self._live:
            self._streams[(channel, ts)] = request_id
            if refused is not None:
                self._refused[(channel, ts)] = refused

    async def stop_streams(self, *, channel: str, thread_ts: str, message_ts: list[str], user: str) -> None:
        """Slack's stop control was pressed on the streams ``message_ts``: stop their answers (here,
        or on the replica that streams them: the signal names the stream, that replica finds it).
        Without streams (none was live: the answer waits for its first words) the thread's answer."""
        names = [f"{STREAM_PREFIX}{ts}" for ts in message_ts] or [f"{THREAD_PREFIX}{thread_ts}"]
        for name in names:
            if self._resolve(name, channel)[0] in self._live:
                await self.stop_local(name, user, channel)
                continue
            try:
                await self.signals.publish_stop(request_id=name, user=user, channel=channel)
            except Exception:
                logger.warning("could not signal a stop for %s", name, exc_info=True)

    def _resolve(self, name: str, channel: str) -> tuple[str, tuple[str, str] | None]:
        """(the request id a stop names, the stream it names if any): a request id, a streamed
        message (``stream:<ts>``) or a thread (``thread:<ts>``) of an answer running here."""
        if name.startswith(STREAM_PREFIX):
            stream = (channel, name.removeprefix(STREAM_PREFIX))
            return self._streams.get(stream, ""), stream
        if name.startswith(THREAD_PREFIX):
            thread = name.removeprefix(THREAD_PREFIX)
            found = (
                rid
                for rid, (request, _) in self._live.items()
                if request.channel == channel and request.thread_ts == thread
            )
            return next(found, ""), None
        return name, None

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
        request_id, stream = self._resolve(request_id, channel)  # Slack's stop control names streams
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
                if stream is not None and stream in self._refused:
                    self._refused[stream](stream[1])
                await self.replies.ephemeral(
                    channel, user, stop_refused(request.user), thread_ts=request.thread_ts
                )
                return
        logger.info("request %s stopped by %s", request_id, user)
        self._stopped_by[request_id] = user
        stopped.set()

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
        """The Retry button: queue the same question again, in the same thread (once per button,
        however often it is pressed before it disappears, and on whichever replica). ``blocks`` and
        ``text`` are the message's."""
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
        sections = [b for b in kept if isinstance(b.get("text"), dict)]
        try:
            if sections or not text:
                shown = "\n\n".join(str(b["text"].get("text", "")) for b in sections) or RETRIED_PLACEHOLDER
                await self.gateway.update_message(
                    team_id=original.team_id, channel=channel, ts=message_ts, text=shown, blocks=kept or None
                )
            else:  # a native stream's answer: its text is Markdown, outside the blocks
                markdown = "\n\n".join(str(b.get("text") or "") for b in kept if b.get("type") == "markdown")
                await self.gateway.streams.update_markdown(
                    team_id=original.team_id, channel=channel, ts=message_ts, markdown=markdown or text
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
