"""``cancel_and_wait``: a task that swallows a cancellation (as redis-py can on Python 3.11, inside
``asyncio.wait_for``) still ends, and nobody waits for it forever. ``KeptTasks``: failures logged,
waited for, and what outlives the linger cancelled."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.tasks import KeptTasks, cancel_and_wait


async def test_a_task_that_swallows_cancellations_is_cancelled_again_until_it_ends() -> None:
    swallowed = 0
    forever = asyncio.Event()  # never set: only a cancellation ends the wait

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await forever.wait()
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 3:
                    raise
                # what asyncio.wait_for on 3.11 can do: the cancellation is lost

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # it is waiting
    await cancel_and_wait(task, every=0.01)
    assert task.cancelled() and swallowed == 3


async def test_finished_and_failing_tasks_are_read_not_raised() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    done = asyncio.create_task(asyncio.sleep(0, result=1))
    failing = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    await cancel_and_wait(done, failing)
    assert done.result() == 1 and isinstance(failing.exception(), RuntimeError)
    await cancel_and_wait()  # nothing to cancel: returns at once


async def test_kept_tasks_log_failures_wait_and_cancel_what_outlives_the_linger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kept = KeptTasks(logging.getLogger("test.kept"))
    done = asyncio.Event()

    async def fails() -> None:
        raise RuntimeError("boom")

    async def quick() -> None:
        done.set()

    async def forever() -> None:
        await asyncio.Event().wait()

    with caplog.at_level(logging.WARNING, logger="test.kept"):
        kept.start(fails(), name="fails")
        kept.start(quick(), name="quick")
        await kept.wait()  # both ended: none is left
    assert len(kept) == 0 and done.is_set()
    assert [r.getMessage() for r in caplog.records] == ["fails failed"]
    assert caplog.records[0].exc_info is not None  # with its traceback

    stuck = kept.start(forever(), name="forever")
    await kept.close(linger=0.01)
    assert stuck.cancelled() and len(kept) == 0
