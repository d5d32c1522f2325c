"""Workers: claim jobs from the queue and run them, holding each job's lease with a heartbeat.

Like arq's worker: ``concurrency`` claim loops per process (``BOT_MAX_CONCURRENCY``), every task kept
in ``self._tasks`` and its result read. The finishing step (``complete``/``release``) runs under
``asyncio.shield`` so a cancellation cannot leave a job half-finished in the queue. ``stop`` is
graceful: no new claims, answers in flight get ``grace`` seconds, the rest are handed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from bot.jobs import Job
from bot.logs import bound_request
from bot.queue.base import JobQueue
from bot.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

JobHandler = Callable[[Job], Awaitable[None]]
JobHook = Callable[[Job], Awaitable[None]]


class TryLater(Exception):
    """Raised by a job's handler when the job cannot go on now but may later (Slack failing
    transiently before anything was shown): the job goes back to the head of its line after
    ``delay`` seconds, its lease held meanwhile, and is claimed again (its try counter grows)."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"try again in {delay:.1f}s")
        self.delay = delay


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Lease:
    """When this worker's lease on a job lapses, on the event loop's clock (conservatively: from the
    moment each renewal was sent, not when the queue applied it)."""

    def __init__(self, lapses_at: float) -> None:
        self.lapses_at = lapses_at

    def renewed(self, sent_at: float, seconds: float) -> None:
        self.lapses_at = sent_at + seconds


class Worker:
    def __init__(
        self,
        *,
        queue: JobQueue,
        handler: JobHandler,
        concurrency: int,
        lease_seconds: float,
        name: str | None = None,
        on_finished: JobHook | None = None,
        claim_timeout: float = 5.0,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.name = name or worker_name()
        self.on_finished = on_finished
        self.claim_timeout = claim_timeout
        self._loops: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[None]] = {}  # job id -> its run task
        self._stopping = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def start(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)
        self._loops.append(asyncio.create_task(self._claim_loop(), name="worker-claim"))

    async def _claim_loop(self) -> None:
        """One claimer per process: it waits for a free slot, then for a job. With one waiting claim
        per replica, Redis wakes replicas in turn, so work spreads over them."""
        seq = 0
        while not self._stopping.is_set():
            await self._slots.acquire()
            seq += 1
            try:
                # A lease name per claim: a lapsed lease can never be renewed by its old holder.
                job = await self.queue.claim(worker=f"{self.name}/{seq}", timeout=self.claim_timeout)
            except asyncio.CancelledError:
                self._slots.release()
                raise
            except Exception:
                self._slots.release()
                logger.exception("claiming a job failed; retrying")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._stopping.wait()
                continue
            if job is None:
                self._slots.release()
                continue
            # The run task (and its heartbeat) copy this context: the worker's own lines about the job
            # (heartbeat, lost lease, handed back, crashed) carry its request id like the engine's.
            lease = _Lease(asyncio.get_running_loop().time() + self.lease_seconds)
            with bound_request(job.request.id):
                task = asyncio.create_task(self._run(job, lease), name=f"job-{job.id}")
                self._running[job.id] = task
                task.add_done_callback(functools.partial(self._finished, job.id))

    def _finished(self, job_id: str, task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            logger.error("job %s crashed", job_id, exc_info=task.exception())

    async def _heartbeat(self, job: Job, run: asyncio.Task[None], lease: _Lease) -> None:
        interval = self.lease_seconds / 3
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)  # the lease's clock, not polling for a state
            started = loop.time()
            # A renewal that has not come back by the time the lease lapses has failed, however long
            # the queue's client would go on trying: another worker may take the job then, and two
            # writers must never edit one answer.
            deadline = asyncio.timeout_at(lease.lapses_at)
            try:
                async with deadline:
                    held = await self.queue.heartbeat(job=job)
            except Exception:
                if deadline.expired() or loop.time() >= lease.lapses_at:
                    logger.error("lease of job %s lapsed (queue unreachable); giving it up", job.id)
                    run.cancel()
                    return
                logger.warning("heartbeat failed for job %s; will try again", job.id)
                continue
            if not held:
                logger.error("lost the lease of job %s; another worker has it", job.id)
                run.cancel()
                return
            lease.renewed(started, self.lease_seconds)

    async def _run(self, job: Job, lease: _Lease) -> None:
        run = asyncio.current_task()
        assert run is not None
        beat = asyncio.create_task(self._heartbeat(job, run, lease), name=f"heartbeat-{job.id}")
        try:
            await self.handler(job)
        except asyncio.CancelledError:
            await cancel_and_wait(beat)
            await asyncio.shield(self._release(job))
            raise
        except TryLater as later:
            logger.warning("job %s will be tried again in %.1fs", job.id, later.delay)
            try:
                await asyncio.sleep(later.delay)  # the heartbeat keeps the lease meanwhile
            finally:
                await cancel_and_wait(beat)
                await asyncio.shield(self._release(job))
            return
        except Exception:
            logger.exception("job %s failed", job.id)
        await cancel_and_wait(beat)
        await asyncio.shield(self._complete(job, lease))

    async def _complete(self, job: Job, lease: _Lease) -> None:
        # Retried while the lease still holds (and no longer): a job left leased is taken over when
        # its lease lapses, and its finished answer would be written a second time.
        loop = asyncio.get_running_loop()
        delay = 0.1
        while True:
            deadline = asyncio.timeout_at(lease.lapses_at)
            try:
                async with deadline:
                    if not await self.queue.complete(job=job):
                        logger.error("job %s finished after its lease was lost", job.id)
                break
            except Exception:
                if deadline.expired() or loop.time() + delay >= lease.lapses_at:
                    logger.exception("could not mark job %s complete before its lease lapsed", job.id)
                    break
                logger.warning("could not mark job %s complete yet; retrying", job.id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        if self.on_finished is not None:
            try:
                await self.on_finished(job)
            except Exception:
                logger.exception("after job %s", job.id)

    async def _release(self, job: Job) -> None:
        try:
            await self.queue.release(job=job)
            logger.info("handed job %s back to the queue", job.id)
        except Exception:
            logger.exception("could not hand job %s back", job.id)

    async def stop(self, *, grace: float) -> None:
        """Stop claiming; let jobs in flight finish for ``grace`` seconds; hand back the rest."""
        self._stopping.set()
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        running = set(self._running.values())
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()  # each hands its job back to the queue
            if late:
                await asyncio.gather(*late, return_exceptions=True)
