"""In-process queue: one line per channel, leases on a monotonic clock, an ``asyncio.Condition`` to
wake waiting workers. Jobs are stored as dicts (copied on read and write), so it behaves like Redis.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bot.jobs import Job, JobStatus
from bot.queue.base import DEFAULT_MAX_TOTAL, QueueAtCapacity, QueueFull, QueueUnavailable


class MemoryQueue:
    def __init__(
        self,
        *,
        channel_concurrency: int = 1,
        lease_seconds: float = 30.0,
        max_total: int = DEFAULT_MAX_TOTAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channel_concurrency = channel_concurrency
        self.lease_seconds = lease_seconds
        self.max_total = max_total
        self._clock = clock
        # queue key -> waiting job ids, in order; only channels with waiting jobs (bounded memory)
        self._lines: dict[str, list[str]] = {}
        self._waiting_total = 0  # sum of the lines' lengths
        self._jobs: dict[str, dict[str, Any]] = {}  # job id -> job data (waiting or in progress)
        self._leases: dict[str, tuple[str, float]] = {}  # job id -> (worker, deadline)
        self._cond = asyncio.Condition()
        self._meta: dict[str, tuple[str, str]] = {}  # job id -> (queue key, thread key)
        self._busy: dict[str, dict[str, str]] = {}  # queue key -> {job id: thread key} in progress
        self._closed = False  # drained at shutdown

    def _job(self, job_id: str) -> Job:
        return Job.from_dict(self._jobs[job_id])

    def _in_progress(self, queue_key: str) -> list[str]:
        """Thread keys of the channel's jobs in progress (kept per channel: O(1) to find)."""
        return list(self._busy.get(queue_key, {}).values())

    def _lease(self, job_id: str, worker: str) -> None:
        queue_key, thread_key = self._meta[job_id]
        self._leases[job_id] = (worker, self._clock() + self.lease_seconds)
        self._busy.setdefault(queue_key, {})[job_id] = thread_key

    def _unlease(self, job_id: str) -> None:
        del self._leases[job_id]
        queue_key, _ = self._meta[job_id]
        busy = self._busy.get(queue_key, {})
        busy.pop(job_id, None)
        if not busy:
            self._busy.pop(queue_key, None)

    async def enqueue(self, *, job: Job, max_waiting: int) -> int:
        async with self._cond:
            if self._closed:
                raise QueueUnavailable("the process is shutting down")
            key = job.request.queue_key
            line = self._lines.get(key, [])
            if job.id in self._jobs:  # idempotent
                position = line.index(job.id) if job.id in line else 0
                return position + len(self._in_progress(key))
            if len(line) >= max_waiting:
                raise QueueFull(f"{len(line)} requests already wait in {key}")
            if self._waiting_total >= self.max_total:
                raise QueueAtCapacity(f"{self._waiting_total} requests already wait in all channels")
            ahead = len(line) + len(self._in_progress(key))
            data = job.to_dict()
            data["status"] = JobStatus.QUEUED.value
            data["enqueued_at"] = time.time()
            self._jobs[job.id] = data
            self._meta[job.id] = (key, job.thread_key)
            self._push(key, job.id, front=False)
            self._cond.notify_all()
            return ahead

    def _push(self, key: str, job_id: str, *, front: bool) -> None:
        line = self._lines.setdefault(key, [])
        if front:
            line.insert(0, job_id)
        else:
            line.append(job_id)
        self._waiting_total += 1

    def _take(self, key: str, job_id: str) -> None:
        line = self._lines[key]
        line.remove(job_id)
        self._waiting_total -= 1
        if not line:
            del self._lines[key]

    def _reap(self) -> float | None:
        """Give jobs whose lease lapsed back to the front of their line; returns the next deadline."""
        now = self._clock()
        next_deadline: float | None = None
        lapsed: list[str] = []
        for job_id, (_, deadline) in list(self._leases.items()):
            if deadline <= now:
                self._unlease(job_id)
                lapsed.append(job_id)
            elif next_deadline is None or deadline < next_deadline:
                next_deadline = deadline
        # Back to the front of their lines, keeping their arrival order.
        for job_id in sorted(lapsed, key=lambda j: self._jobs[j]["enqueued_at"], reverse=True):
            data = self._jobs[job_id]
            data["status"] = JobStatus.QUEUED.value
            data["worker"] = None
            self._push(self._meta[job_id][0], job_id, front=True)
        return next_deadline

    def _pick(self) -> str | None:
        heads = [(self._jobs[line[0]]["enqueued_at"], key) for key, line in self._lines.items() if line]
        for _, key in sorted(heads):
            busy_threads = self._in_progress(key)
            if len(busy_threads) >= self.channel_concurrency:
                continue
            for job_id in self._lines[key]:
                if self._meta[job_id][1] not in busy_threads:
                    return job_id
        return None

    async def claim(self, *, worker: str, timeout: float) -> Job | None:
        deadline = self._clock() + timeout
        async with self._cond:
            while True:
                next_lapse = self._reap()
                job_id = self._pick()
                if job_id is not None:
                    data = self._jobs[job_id]
                    self._take(self._meta[job_id][0], job_id)
                    data["status"] = JobStatus.IN_PROGRESS.value
                    data["tries"] = int(data["tries"]) + 1
                    data["worker"] = worker
                    self._lease(job_id, worker)
                    return Job.from_dict(data)
                now = self._clock()
                if now >= deadline:
                    return None
                wake = deadline if next_lapse is None else min(deadline, next_lapse)
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
                # that arrives as the condition is notified (a stopping worker then hung for the
                # whole claim timeout).
                try:
                    async with asyncio.timeout(max(0.0, wake - now)):
                        await self._cond.wait()
                except TimeoutError:
                    pass

    def _holds(self, job: Job) -> bool:
        lease = self._leases.get(job.id)
        return lease is not None and lease[0] == job.worker and lease[1] > self._clock()

    async def heartbeat(self, *, job: Job) -> bool:
        async with self._cond:
            if not self._holds(job):
                return False
            self._leases[job.id] = (str(job.worker), self._clock() + self.lease_seconds)
            return True

    async def complete(self, *, job: Job) -> bool:
        async with self._cond:
            if not self._holds(job):
                return False
            self._unlease(job.id)
            del self._jobs[job.id]
            del self._meta[job.id]
            self._cond.notify_all()
            return True

    async def release(self, *, job: Job) -> None:
        async with self._cond:
            if not self._holds(job):
                return
            self._unlease(job.id)
            data = self._jobs[job.id]
            data["status"] = JobStatus.QUEUED.value
            data["worker"] = None
            self._push(self._meta[job.id][0], job.id, front=True)
            self._cond.notify_all()

    async def drain(self) -> list[Job]:
        """Take every job out (waiting, handed back or leased), oldest first, and close the queue
        (a later ``enqueue`` raises ``QueueUnavailable``): at shutdown an in-memory queue ends with
        the process, so the caller tells their askers."""
        async with self._cond:
            self._closed = True
            jobs = sorted((Job.from_dict(data) for data in self._jobs.values()), key=lambda j: j.enqueued_at)
            self._lines.clear()
            self._waiting_total = 0
            self._jobs.clear()
            self._leases.clear()
            self._meta.clear()
            self._busy.clear()
            return jobs

    async def waiting(self, *, queue_key: str) -> list[Job]:
        return [self._job(job_id) for job_id in self._lines.get(queue_key, [])]

    async def ahead(self, *, queue_key: str) -> int:
        return sum(await self.counts(queue_key=queue_key))

    async def counts(self, *, queue_key: str) -> tuple[int, int]:
        return len(self._lines.get(queue_key, [])), len(self._in_progress(queue_key))

    async def close(self) -> None:
        return None
