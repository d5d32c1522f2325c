"""In-process per-channel queue: a FIFO per channel, one drain task per busy channel, a semaphore
bounding how many answers run at once. Every task is kept and its result read (no fire-and-forget)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from bot.jobs import Job, JobStatus
from bot.queue.base import JobHandler

logger = logging.getLogger(__name__)


class MemoryQueue:
    def __init__(self, *, max_concurrency: int) -> None:
        self._pending: dict[str, deque[Job]] = {}
        self._running: dict[str, int] = {}
        self._sem = asyncio.Semaphore(max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._handler: JobHandler | None = None
        self._closed = False

    def start(self, *, handler: JobHandler) -> None:
        self._handler = handler

    async def ahead(self, *, queue_key: str) -> int:
        return len(self._pending.get(queue_key, ())) + self._running.get(queue_key, 0)

    async def enqueue(self, *, job: Job) -> int:
        if self._closed:
            raise RuntimeError("queue is closed")
        key = job.request.queue_key
        ahead = await self.ahead(queue_key=key)
        self._pending.setdefault(key, deque()).append(Job.from_dict(job.to_dict()))  # copy, like Redis
        if key not in self._running:
            self._running[key] = 0
            task = asyncio.create_task(self._drain(key), name=f"queue-{key}")
            self._tasks.add(task)
            task.add_done_callback(self._reap)
        return ahead

    def _reap(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("queue worker crashed", exc_info=task.exception())

    async def _drain(self, key: str) -> None:
        try:
            while (pending := self._pending.get(key)) and self._handler is not None:
                job = pending.popleft()
                self._running[key] += 1
                try:
                    async with self._sem:
                        job.status = JobStatus.IN_PROGRESS
                        job.tries += 1
                        await self._handler(job)
                except Exception:
                    logger.exception("job %s failed", job.request.id)
                finally:
                    self._running[key] -= 1
        finally:
            self._running.pop(key, None)
            if not self._pending.get(key):
                self._pending.pop(key, None)

    async def close(self, *, grace: float) -> None:
        self._closed = True
        for pending in self._pending.values():
            pending.clear()
        if not self._tasks:
            return
        _, still_running = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running)
