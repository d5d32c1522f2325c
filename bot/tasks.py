"""Cancelling tasks for good.

``task.cancel()`` then ``await task`` can wait forever on Python 3.11: redis-py wraps its socket
reads and writes in ``asyncio.wait_for``, which swallows a cancellation that arrives as the inner
read completes (fixed in 3.12). The task then goes on as if never cancelled — a pub/sub listener keeps
listening, a heartbeat keeps renewing — and whoever awaits it waits with it. CI saw a shutdown hang
exactly so. ``cancel_and_wait`` cancels again, a moment apart, until every task has ended.
"""

from __future__ import annotations

import asyncio
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
