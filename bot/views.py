"""Chooses and builds the answer view of a job (``bot.view``), once, when its answer starts.

The transport (``BOT_TRANSPORT``): ``edit`` edits the placeholder (``EditView``), as always;
``native`` streams with Slack's native streams (``NativeView``) wherever Slack allows them; ``auto``
streams natively only while the workspace's start and stop budgets have room now: a start and a stop
are reserved for the stream before it is chosen (``Pacing.reserve``), so its stop is sure to fit,
and otherwise the answer is edited. A /ask answer is the top-level message that quotes the question,
which a stream (always a reply) cannot be: it is edited. So is a resumed answer: the streams an
earlier worker left (its replica died) are known from the dedup store (``StreamLog``) and removed, so
the answer is not shown twice. A workspace whose Slack lacks the methods is remembered
(``Availability``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from bot.errors import SlackError
from bot.gateway import SlackGateway
from bot.jobs import Job, Source
from bot.settings import Settings
from bot.store.base import Deduplicator, StoreUnavailable
from bot.texts import THINKING_TEXT
from bot.view.base import AnswerView
from bot.view.edit import EditView
from bot.view.native import NativeView
from bot.view.native_parts import Availability, Fallback, remove_streams

logger = logging.getLogger(__name__)

START, STOP = "chat.startStream", "chat.stopStream"
# (request id, channel, stream ts, told when a Stop of it is refused)
OnStream = Callable[[str, str, str, Callable[[str], None]], None]


class Views:
    def __init__(
        self,
        *,
        settings: Settings,
        gateway: SlackGateway,
        on_stream: OnStream | None = None,
        claims: Deduplicator | None = None,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.stream_log = StreamLog(claims) if claims is not None else None
        self.availability = Availability()
        self._on_stream = on_stream  # a native stream started (``Controls.streaming``)

    async def open(
        self, job: Job, *, prefix: str, shown_text: str | None, thread_ts: str | None
    ) -> AnswerView:
        assert job.placeholder_ts is not None
        if thread_ts is not None and await self._native(job):
            return self._native_view(job, prefix=prefix, shown_text=shown_text, thread_ts=thread_ts)
        if job.resumed:
            await self._remove_earlier_streams(job)
        return self._edit_view(
            job,
            placeholder_ts=job.placeholder_ts,
            prefix=prefix,
            shown_text=shown_text,
            thread_ts=thread_ts,
            continuations=await self._earlier_continuations(job, thread_ts) if job.resumed else None,
        )

    async def _native(self, job: Job) -> bool:
        """Whether this answer streams natively (reserving its start and stop under ``auto``)."""
        request = job.request
        transport = self.settings.transport
        if transport == "edit" or request.source is Source.COMMAND or job.resumed:
            return False
        if not self.availability.streams(request.team_id):
            return False
        if transport == "native":
            return True
        pacing = self.gateway.pacing
        if not await pacing.reserve(START, key=request.team_id, answer_id=request.id):
            return False
        if await pacing.reserve(STOP, key=request.team_id, answer_id=request.id):
            return True
        await pacing.live(START, key=request.team_id, answer_id=request.id, alive=False)
        return False

    def _native_view(self, job: Job, *, prefix: str, shown_text: str | None, thread_ts: str) -> NativeView:
        assert job.placeholder_ts is not None
        request = job.request
        s = self.settings
        in_dm = request.source is Source.DM or request.channel.startswith("D")
        return NativeView(
            gateway=self.gateway,
            team_id=request.team_id,
            channel=request.channel,
            thread_ts=thread_ts,
            request_id=request.id,
            recipient=None if in_dm else (request.user, request.team_id),
            placeholder_ts=job.placeholder_ts,
            placeholder_is_notice=shown_text not in (None, THINKING_TEXT),
            availability=self.availability,
            fallback=Fallback(
                gateway=self.gateway,
                team_id=request.team_id,
                channel=request.channel,
                thread_ts=thread_ts,
                request_id=request.id,
                prefix=prefix,
                shown_text=shown_text,
                make=lambda **kw: self._edit_view(job, thread_ts=thread_ts, **kw),
            ),
            prefix=prefix,
            interval=s.stream_append_interval_seconds,
            rollover_chars=s.stream_rollover_chars,
            rollover_seconds=s.stream_rollover_seconds,
            reserved=request.id if s.transport == "auto" else None,
            on_stream=lambda ts, refused: self._stream_started(request.id, request.channel, ts, refused),
            remember=None if self.stream_log is None else functools.partial(self.stream_log.add, request.id),
        )

    def _stream_started(self, request_id: str, channel: str, ts: str, refused: Callable[[str], None]) -> None:
        if self._on_stream is not None:
            self._on_stream(request_id, channel, ts, refused)

    def _edit_view(self, job: Job, *, placeholder_ts: str, thread_ts: str | None, **kw: Any) -> EditView:
        s = self.settings
        return EditView(
            gateway=self.gateway,
            team_id=job.request.team_id,
            channel=job.request.channel,
            placeholder_ts=placeholder_ts,
            thread_ts=thread_ts,
            interval=s.edit_interval_seconds,
            final_deadline=s.final_edit_deadline_seconds,
            request_id=job.request.id,
            stop_button=True,
            **kw,
        )

    async def _remove_earlier_streams(self, job: Job) -> None:
        """A resumed answer: the native streams its earlier worker started are stopped (Slack would end
        them in a few minutes, partial) and deleted; the answer is shown anew by edits."""
        if self.stream_log is None:
            return
        request = job.request
        left = await self.stream_log.left(request.id)
        await remove_streams(
            self.gateway,
            team_id=request.team_id,
            channel=request.channel,
            streams=left,
            live=dict.fromkeys(left),  # stopping one that ended is refused, harmlessly
        )

    async def _earlier_continuations(self, job: Job, thread_ts: str | None) -> list[str]:
        """A resumed answer: the continuation messages its earlier worker posted (pieces 1, 2, …),
        so they are edited or removed instead of left in the thread beside a second copy."""
        assert job.placeholder_ts is not None
        root = thread_ts or job.placeholder_ts
        try:
            pieces = await self.gateway.posts.posted_pieces(
                channel=job.request.channel,
                thread_ts=root,
                request_id=job.request.id,
                team_id=job.request.team_id,
            )
        except SlackError as err:
            logger.warning("could not look for earlier pieces of request %s: %s", job.request.id, err.error)
            return []
        found: list[str] = []
        while len(found) + 1 in pieces:
            found.append(pieces[len(found) + 1])
        return found


class StreamLog:
    """Every native stream of an answer, in the dedup store (shared by replicas): an answer resumed
    after its replica died finds the streams that replica left."""

    def __init__(self, claims: Deduplicator) -> None:
        self._claims = claims

    async def add(self, request_id: str, n: int, ts: str) -> None:
        try:
            await self._claims.claim(key=f"stream:{request_id}:{n}", value=ts)
        except StoreUnavailable:
            logger.warning("could not keep stream %s of request %s", ts, request_id)

    async def left(self, request_id: str) -> list[str]:
        found: list[str] = []
        try:
            while ts := await self._claims.claim(key=f"stream:{request_id}:{len(found)}", value=""):
                found.append(ts)
        except StoreUnavailable:
            logger.warning("could not look for the earlier streams of request %s", request_id)
        return found
