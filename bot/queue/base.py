"""The queue seam: requests of one channel are answered one at a time, in arrival order; channels
run concurrently up to a bound."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.jobs import Job

JobHandler = Callable[[Job], Awaitable[None]]


class JobQueue(Protocol):
    def start(self, *, handler: JobHandler) -> None:
        """Begin running jobs with ``handler`` (which reports its own failures)."""
        ...

    async def enqueue(self, *, job: Job) -> int:
        """Queue ``job``; returns how many jobs of its channel are ahead of it."""
        ...

    async def ahead(self, *, queue_key: str) -> int:
        """How many jobs of the channel are waiting or running now."""
        ...

    async def close(self, *, grace: float) -> None:
        """Stop: let running jobs finish for up to ``grace`` seconds, then cancel them."""
        ...
