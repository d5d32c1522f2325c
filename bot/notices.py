"""Queue positions: the placeholders of waiting questions say how many are ahead ("Queued: 2 requests
ahead of you…"), updated as the line moves, at the lowest edit priority.

Notices cost edits from the workspace's budget: each finished answer would otherwise re-edit every
waiting placeholder. The last two places are shown exactly, the rest in steps of 5.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.errors import SlackError
from bot.gateway import SlackGateway
from bot.jobs import Job, Source
from bot.queue.base import JobQueue
from bot.ratelimit.base import Priority
from bot.tasks import cancel_and_wait
from bot.texts import command_header, queued_text

logger = logging.getLogger(__name__)


def worth_a_notice(position: int) -> bool:
    """Position 0 is never a notice: the answer's own view replaces the placeholder as it starts."""
    return 0 < position <= 2 or (position > 2 and position % 5 == 0)


class QueueNotices:
    def __init__(
        self,
        *,
        queue: JobQueue,
        gateway: SlackGateway,
        placeholder_of: Callable[[Job], Awaitable[str | None]],
    ) -> None:
        self.queue = queue
        self.gateway = gateway
        self._placeholder_of = placeholder_of  # a waiting job's placeholder, if posted yet
        self._shown: dict[str, str] = {}  # job id -> the notice its placeholder shows
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}  # job id -> held while its notice is edited

    def posted(self, job: Job, text: str) -> None:
        self._shown[job.id] = text

    def shown(self, job: Job) -> str | None:
        """What this replica last showed in the job's placeholder (and forget it: the answer starts)."""
        return self._shown.pop(job.id, None)

    async def settled(self, job: Job) -> None:
        """Wait until a notice being edited for ``job`` has landed (it must land before the answer's
        first edit)."""
        lock = self._locks.get(job.id)
        if lock is not None:
            async with lock:
                pass

    def finished(self, job: Job) -> None:
        self._shown.pop(job.id, None)
        self.line_moved_in(job.request.queue_key)

    def line_moved_in(self, queue_key: str) -> None:
        """Update the "Queued: N ahead" placeholders of a channel, in one tracked task per channel."""
        task = self._tasks.get(queue_key)
        if task is not None and not task.done():
            self._dirty.add(queue_key)
            return
        task = asyncio.create_task(self._update(queue_key), name=f"positions-{queue_key}")
        self._tasks[queue_key] = task
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        for key, known in list(self._tasks.items()):
            if known is task:
                del self._tasks[key]
        if not task.cancelled() and task.exception() is not None:
            logger.warning("updating queue positions failed", exc_info=task.exception())

    async def _update(self, queue_key: str) -> None:
        while True:
            self._dirty.discard(queue_key)
            waiting = await self.queue.waiting(queue_key=queue_key)
            in_progress = await self.queue.ahead(queue_key=queue_key) - len(waiting)
            for index, job in enumerate(waiting):
                position = in_progress + index
                text = queued_text(position)
                if self._shown.get(job.id) == text or not worth_a_notice(position):
                    continue
                ts = await self._placeholder_of(job)
                if ts is not None:
                    await self._show(queue_key, job, ts, text)
            if queue_key not in self._dirty:
                return

    async def _show(self, queue_key: str, job: Job, ts: str, text: str) -> None:
        shown = f"{command_header(job.request)}\n\n{text}" if job.request.source is Source.COMMAND else text
        try:
            await self.gateway.edit_slot(team_id=job.request.team_id, priority=Priority.NOTICE)
            # The wait for a notice slot can be long: only a job still waiting gets one, so a stale
            # position never lands over an answer. The check and the edit hold the job's notice
            # lock, which an answer starting here waits for (``settled``): the edit cannot arrive
            # after the answer's first words.
            async with self._locks.setdefault(job.id, asyncio.Lock()):
                still = await self.queue.waiting(queue_key=queue_key)
                if job.id not in {j.id for j in still}:
                    return
                await self.gateway.update_message(
                    team_id=job.request.team_id,
                    channel=job.request.channel,
                    ts=ts,
                    text=shown,
                    slot_taken=True,
                    retry=False,
                )
                self._shown[job.id] = text
        except SlackError as err:
            logger.info("could not update a queue position: %s", err.error)
        finally:
            lock = self._locks.get(job.id)
            if lock is not None and not lock.locked():
                del self._locks[job.id]

    async def close(self) -> None:
        """Queue notices are dropped at once."""
        await cancel_and_wait(*self._tasks.values())
