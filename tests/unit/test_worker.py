"""The worker's handling of an unreachable queue: a lease that lapses while heartbeats fail is given
up (two writers must never edit one answer), and marking a finished job complete is retried while the
lease would hold (else the finished answer would be taken over and written again)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.jobs import Job, Request, Source
from bot.queue.memory import MemoryQueue
from bot.worker import Worker


def _job() -> Job:
    request = Request(source=Source.MENTION, team_id="T1", channel="C1", user="U1", text="q", ts="1.0")
    return Job(request=request)


def _endless_handler() -> tuple[Callable[[Job], Awaitable[None]], asyncio.Event, asyncio.Event]:
    """A job handler that runs until cancelled; events tell when it started and was cancelled."""
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    return handler, started, cancelled


async def test_a_lease_lapsed_while_the_queue_is_unreachable_is_given_up() -> None:
    queue = MemoryQueue()
    await queue.enqueue(job=_job(), max_waiting=5)

    async def heartbeat(*, job: Job) -> bool:
        raise ConnectionError("redis is down")

    queue.heartbeat = heartbeat  # type: ignore[method-assign]
    handler, started, cancelled = _endless_handler()

    worker = Worker(queue=queue, handler=handler, concurrency=1, lease_seconds=0.3, claim_timeout=0.1)
    worker.start()
    try:
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.wait_for(cancelled.wait(), 2)  # given up after about one lease
    finally:
        await worker.stop(grace=0.5)


async def test_complete_is_retried_until_the_queue_takes_it() -> None:
    queue = MemoryQueue()
    await queue.enqueue(job=_job(), max_waiting=5)
    real_complete = queue.complete
    calls = 0
    done = asyncio.Event()

    async def complete(*, job: Job) -> bool:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConnectionError("redis blinked")
        result = await real_complete(job=job)
        done.set()
        return result

    queue.complete = complete  # type: ignore[method-assign]

    async def handler(job: Job) -> None:
        return None

    worker = Worker(queue=queue, handler=handler, concurrency=1, lease_seconds=5, claim_timeout=0.1)
    worker.start()
    try:
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await worker.stop(grace=0.5)
    assert calls == 3
    assert await queue.ahead(queue_key=_job().request.queue_key) == 0  # nothing left leased


async def test_a_renewal_that_hangs_past_the_lease_gives_the_job_up_on_time() -> None:
    queue = MemoryQueue()
    await queue.enqueue(job=_job(), max_waiting=5)

    async def heartbeat(*, job: Job) -> bool:
        await asyncio.sleep(30)  # a queue client retrying for longer than the lease
        return True

    queue.heartbeat = heartbeat  # type: ignore[method-assign]
    handler, started, cancelled = _endless_handler()

    worker = Worker(queue=queue, handler=handler, concurrency=1, lease_seconds=0.6, claim_timeout=0.1)
    worker.start()
    try:
        await asyncio.wait_for(started.wait(), 5)
        loop = asyncio.get_running_loop()
        begun = loop.time()
        await asyncio.wait_for(cancelled.wait(), 5)
        assert loop.time() - begun < 0.8  # at the lapse, not when the hanging call gives up
    finally:
        await worker.stop(grace=0.5)
