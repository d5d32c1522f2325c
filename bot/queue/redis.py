"""The queue in Redis, shared by every replica: the same contract as ``MemoryQueue``.

Each step (enqueue, claim with reaping of lapsed leases, heartbeat, complete, release) is one Lua
script, so Redis runs it atomically: no replica ever sees half a step. Lease deadlines come from
Redis' own clock (``TIME`` inside the scripts), so replicas with skewed clocks agree on them. A
worker with nothing to claim blocks on ``BLPOP`` of a wake-up list that enqueue, complete and release
push a token to; it never sleep-polls. The scripts and their keys: ``bot/queue/redis_scripts.py``;
the data model and why it is correct: ``docs/redis.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import redis.asyncio as aioredis

from bot.jobs import Job
from bot.queue.base import DEFAULT_MAX_TOTAL, QueueAtCapacity, QueueFull, QueueUnavailable
from bot.queue.redis_scripts import (
    CLAIM_SCRIPT,
    COMPLETE_SCRIPT,
    DEFAULT_PREFIX,
    ENQUEUE_SCRIPT,
    HEARTBEAT_SCRIPT,
    RELEASE_SCRIPT,
    WAITING_SCRIPT,
    inflight_key,
    line_key,
    wake_key,
)
from bot.redis import unavailable_as


def _read_outcome(call: asyncio.Future[Any]) -> None:
    """Read a finished claim's outcome nobody awaits any more (its exception is not an error)."""
    if not call.cancelled():
        call.exception()


def _job_from_hash(flat: list[Any]) -> Job:
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    data: dict[str, Any] = json.loads(fields["data"])
    data["status"] = fields["status"]
    data["tries"] = int(fields["tries"])
    data["worker"] = fields["worker"] or None
    data["enqueued_at"] = float(fields["enqueued_at"])
    return Job.from_dict(data)


class RedisQueue:
    """``JobQueue`` in Redis. Does not own ``redis``: ``close`` leaves the client open.

    ``redis`` must decode responses (``bot.redis.connect`` does). Every replica must use the same
    ``prefix``, ``channel_concurrency``, ``lease_seconds`` and ``max_total`` (the bound is shared:
    ``max_total`` waiting jobs in this Redis, whatever the number of replicas).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        channel_concurrency: int = 1,
        lease_seconds: float = 30.0,
        max_total: int = DEFAULT_MAX_TOTAL,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        if channel_concurrency < 1:
            raise ValueError("channel_concurrency must be at least 1")
        self.channel_concurrency = channel_concurrency
        self.lease_seconds = lease_seconds
        self.max_total = max_total
        self.prefix = prefix
        self._redis = redis
        self._lease_ms = max(1, round(lease_seconds * 1000))
        self._enqueue = redis.register_script(ENQUEUE_SCRIPT)
        self._claim = redis.register_script(CLAIM_SCRIPT)
        self._heartbeat = redis.register_script(HEARTBEAT_SCRIPT)
        self._complete = redis.register_script(COMPLETE_SCRIPT)
        self._release = redis.register_script(RELEASE_SCRIPT)
        self._waiting = redis.register_script(WAITING_SCRIPT)
        # A BLPOP must return before the socket timeout would cut it (and count as Redis down).
        socket_timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
        self._max_block = 30.0 if socket_timeout is None else max(0.05, float(socket_timeout) * 0.8)
        # BLPOPs of cancelled claims that redis-py has not let go of yet (see _wait_for_wake).
        self._left_behind: set[asyncio.Future[Any]] = set()

    async def enqueue(self, *, job: Job, max_waiting: int) -> int:
        data = job.to_dict()
        with unavailable_as(QueueUnavailable):
            outcome, count = await self._enqueue(
                args=[
                    self.prefix,
                    job.id,
                    job.request.queue_key,
                    job.thread_key,
                    json.dumps(data),
                    job.tries,
                    max_waiting,
                    self.max_total,
                ]
            )
        if outcome == 0:
            raise QueueFull(f"{count} requests already wait in {job.request.queue_key}")
        if outcome == 3:
            raise QueueAtCapacity(f"{count} requests already wait in all channels")
        return int(count)

    async def claim(self, *, worker: str, timeout: float) -> Job | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found, payload = await self._claim_or_give_back(worker)
            if found:
                return _job_from_hash(payload)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            wait = min(remaining, self._max_block)
            if int(payload) >= 0:  # wake up when the next lease lapses, to reap it
                wait = min(wait, int(payload) / 1000 + 0.002)
            await self._wait_for_wake(wait)

    async def _wait_for_wake(self, wait: float) -> None:
        """Block on the wake-up list for up to ``wait`` seconds; a cancellation ends it at once.

        The ``BLPOP`` runs in a task of its own behind a shield: redis-py (on Python 3.11, through
        ``asyncio.wait_for``) can swallow a cancellation and keep blocking until its timeout, which
        would hold a cancelled claim for up to a lease. A ``BLPOP`` left behind is cancelled too; if
        it still takes a token, the token goes back for another claim."""
        abandoned = asyncio.Event()
        waiter = asyncio.ensure_future(self._blpop(wait, abandoned))
        try:
            await asyncio.shield(waiter)
        except asyncio.CancelledError:
            abandoned.set()
            waiter.cancel()
            if not waiter.done():
                self._left_behind.add(waiter)
                waiter.add_done_callback(self._forget_left_behind)
            raise

    async def _blpop(self, wait: float, abandoned: asyncio.Event) -> None:
        with unavailable_as(QueueUnavailable):
            token = await self._redis.blpop([wake_key(self.prefix)], timeout=max(0.001, round(wait, 3)))
            if token is not None and abandoned.is_set():
                await self._redis.lpush(wake_key(self.prefix), "1")

    def _forget_left_behind(self, waiter: asyncio.Future[Any]) -> None:
        self._left_behind.discard(waiter)
        _read_outcome(waiter)

    async def _claim_or_give_back(self, worker: str) -> list[Any]:
        """Run the claim script to its end even if the caller is cancelled meanwhile: a job it
        leased then goes back to the front of its line untouched (else the job would wait for
        its lease to lapse, holding its channel, and come back counted as a second try)."""
        call = asyncio.ensure_future(self._run_claim(worker))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            with contextlib.suppress(QueueUnavailable):
                found, payload = await asyncio.shield(call)
                if found:
                    job = _job_from_hash(payload)
                    await asyncio.shield(self._give_back(job, unclaim=True))
            raise
        finally:
            if not call.done():  # cancelled twice: the job's lease will lapse; read the outcome
                call.add_done_callback(_read_outcome)

    async def _run_claim(self, worker: str) -> list[Any]:
        with unavailable_as(QueueUnavailable):
            outcome: list[Any] = await self._claim(
                args=[self.prefix, worker, self._lease_ms, self.channel_concurrency]
            )
        return outcome

    async def heartbeat(self, *, job: Job) -> bool:
        with unavailable_as(QueueUnavailable):
            renewed = await self._heartbeat(
                args=[self.prefix, job.id, job.worker or "", job.tries, self._lease_ms]
            )
        return bool(renewed)

    async def complete(self, *, job: Job) -> bool:
        with unavailable_as(QueueUnavailable):
            done = await self._complete(args=[self.prefix, job.id, job.worker or "", job.tries])
        return bool(done)

    async def release(self, *, job: Job) -> None:
        await self._give_back(job, unclaim=False)

    async def _give_back(self, job: Job, *, unclaim: bool) -> None:
        with unavailable_as(QueueUnavailable):
            await self._release(args=[self.prefix, job.id, job.worker or "", job.tries, int(unclaim)])

    async def waiting(self, *, queue_key: str) -> list[Job]:
        with unavailable_as(QueueUnavailable):
            hashes = await self._waiting(args=[self.prefix, queue_key])
        return [_job_from_hash(flat) for flat in hashes]

    async def ahead(self, *, queue_key: str) -> int:
        return sum(await self.counts(queue_key=queue_key))

    async def counts(self, *, queue_key: str) -> tuple[int, int]:
        with unavailable_as(QueueUnavailable):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.llen(line_key(self.prefix, queue_key))
                pipe.zcard(inflight_key(self.prefix, queue_key))
                waiting, busy = await pipe.execute()
        return int(waiting), int(busy)

    async def close(self) -> None:
        """Wait for the BLPOPs of cancelled claims still in flight (each ends by its own timeout)."""
        await asyncio.gather(*self._left_behind, return_exceptions=True)
