"""Intake: what happens right after Slack's ack, in this order:

dedup → busy? → access and limits → **durable enqueue** ── ack ──▶ 👀 → placeholder.

Everything up to the enqueue runs *before* the ack (Bolt's ``process_before_response``: store and
queue calls only, no Slack call), so an acked question is already queued and a replica killed at any
moment after the ack loses nothing: the worker that claims the job posts or adopts its placeholder
(``bot.placeholders``). What talks to Slack (the placeholder, 👀, a refusal's reply) runs after the ack
in a task the intake keeps. Requests of one channel are accepted one at a time, so they are queued in
the order they arrived.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot import logs
from bot.access import Access
from bot.errors import SlackError
from bot.followups import ThreadFollowups
from bot.jobs import Job, Request
from bot.metrics import Metrics
from bot.notices import QueueNotices
from bot.payloads import dedup_keys
from bot.placeholders import Placeholders
from bot.queue.base import JobQueue, QueueAtCapacity, QueueFull, QueueUnavailable
from bot.reactions import Reactions
from bot.replies import Replies
from bot.settings import Settings
from bot.store.base import Deduplicator, StoreUnavailable
from bot.tasks import KeptTasks
from bot.texts import BOT_BUSY_TEXT, BUSY_TEXT, HELP_TEXT, QUEUE_DOWN_TEXT, WARNING_PREFIX, queued_text

logger = logging.getLogger(__name__)


class Intake:
    def __init__(
        self,
        *,
        settings: Settings,
        metrics: Metrics,
        dedup: Deduplicator,
        queue: JobQueue,
        access: Access,
        placeholders: Placeholders,
        notices: QueueNotices,
        reactions: Reactions,
        replies: Replies,
        followups: ThreadFollowups,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.dedup = dedup
        self.queue = queue
        self.access = access
        self.placeholders = placeholders
        self.notices = notices
        self.reactions = reactions
        self.replies = replies
        self.followups = followups
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # queue key -> (lock, [users])
        self._idle = asyncio.Event()  # set while no question is being accepted
        self._idle.set()
        self._after_ack = KeptTasks(logger, level=logging.ERROR)  # placeholders, reactions, replies

    async def help(self, request: Request) -> None:
        """Reply to an empty mention or DM with a short help text, no model call."""
        try:
            if not await self.dedup.first_time(keys=dedup_keys(request)):
                return
        except StoreUnavailable:
            pass  # a help text twice is better than none
        self.later(self.replies.reply(request, HELP_TEXT), name=f"help-{request.id}")

    def later(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run Slack-facing work after the ack, in a task that is kept and whose failure is logged."""
        self._after_ack.start(work, name=name)

    async def submit(self, request: Request, *, dedup: bool = True) -> None:
        key = request.queue_key
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        self._idle.clear()
        try:
            async with lock:
                with logs.bound_request(request.id):
                    await self._submit(request, dedup=dedup)
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]
            if not self._locks:
                self._idle.set()

    async def settled(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until no question is being accepted: each has been
        queued or answered with a refusal. Used at shutdown, before the in-memory queue is drained."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
                await self._after_ack.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        await self._after_ack.close()

    def _reply(self, request: Request, text: str) -> None:
        self.later(self.replies.reply(request, text), name=f"reply-{request.id}")

    async def _submit(self, request: Request, *, dedup: bool) -> None:
        try:
            first = not dedup or await self.dedup.first_time(keys=dedup_keys(request))
        except StoreUnavailable:
            self._reply(request, WARNING_PREFIX + QUEUE_DOWN_TEXT)
            return
        if not first:
            logger.info("duplicate delivery ignored (request %s, event %s)", request.id, request.event_id)
            return
        logger.info("request %s from %s in %s", request.id, request.source.value, request.channel)
        self.metrics.request(request.source.value)
        if self.settings.log_message_text:
            logger.info("question from %s: %s", request.user, request.text)
        # Busy (or down) before the limits: taking the user's rate-limit slot is the last check, so a
        # question the channel cannot take does not cost the asker one of their questions.
        try:
            waiting, in_progress = await self.queue.counts(queue_key=request.queue_key)
        except QueueUnavailable:
            self._reply(request, WARNING_PREFIX + QUEUE_DOWN_TEXT)
            return
        if waiting >= self.settings.max_queue_per_channel:
            self._reply(request, BUSY_TEXT)
            return
        refusal = await self.access.refusal(request)
        if refusal is not None:
            self._reply(request, refusal)
            return
        ahead = waiting + in_progress
        job = Job(request=request, posted_text=queued_text(ahead))
        try:
            actual = await self.queue.enqueue(job=job, max_waiting=self.settings.max_queue_per_channel)
        except QueueAtCapacity:  # every channel's questions together: not this channel's fault
            self._reply(request, BOT_BUSY_TEXT)
            return
        except QueueFull:
            self._reply(request, BUSY_TEXT)
            return
        except QueueUnavailable:
            self._reply(request, WARNING_PREFIX + QUEUE_DOWN_TEXT)
            return
        # Durable from here on: whatever happens next, a worker answers it.
        self.metrics.queued()
        await self.followups.queued(request)  # replies in its thread are answered from now on
        self.later(self._announce(job, actual, ahead), name=f"placeholder-{request.id}")

    async def _announce(self, job: Job, actual: int, ahead: int) -> None:
        """After the ack: 👀, then the placeholder (or the worker posts it, if it starts first)."""
        request = job.request
        self.reactions.working(request)
        status = queued_text(actual)
        try:
            owner = await self.placeholders.post(job, status)
        except SlackError as err:  # not expected (the placeholders map them), but never lose the job
            logger.warning("placeholder of request %s not posted: %s", request.id, err.error)
            owner = None
        if owner is not None:
            self.notices.posted(job, status)
        if actual != ahead:
            self.notices.line_moved_in(request.queue_key)
