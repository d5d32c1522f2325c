"""Cancelling tasks for good.

``task.cancel()`` then ``await task`` can wait forever on Python 3.11: redis-py wraps its socket
reads and writes in ``asyncio.wait_for``, which swallows a cancellation that arrives as the inner
read completes (fixed in 3.12). The task then goes on as if never cancelled — a pub/sub listener keeps
listening, a heartbeat keeps renewing — and whoever awaits it waits with it. CI saw a shutdown hang
exactly so. ``cancel_and_wait`` cancels again, a moment apart, until every task has ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

# How long a cancelled task gets to end before it is cancelled again.
RECANCEL_SECONDS = 0.1


async def cancel_and_wait(*tasks: asyncio.Future[Any], every: float = RECANCEL_SECONDS) -> None:
    """Cancel ``tasks`` and return once each has ended (cancelled, or finished meanwhile); their
    results and exceptions are read here, not raised. Cancelling the caller stops the waiting."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)
    for task in tasks:
        if not task.cancelled():
            task.exception()


class KeptTasks:
    """Work that outlives the call that started it (a reaction, a reply after the ack, a clean-up):
    each task is kept, never fire-and-forget; a failure is logged (at ``level``, with its traceback)
    when it ends; ``close`` gives what is left ``linger`` seconds, then cancels it for good."""

    def __init__(self, logger: logging.Logger, *, level: int = logging.WARNING) -> None:
        self._logger = logger
        self._level = level
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, work: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._logger.log(self._level, "%s failed", task.get_name(), exc_info=task.exception())

    async def wait(self) -> None:
        """Return once no task is left (those started meanwhile included)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self, *, linger: float = 0.0) -> None:
        tasks = list(self._tasks)
        if tasks and linger > 0:
            await asyncio.wait(tasks, timeout=linger)
        await cancel_and_wait(*tasks)
