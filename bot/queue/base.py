"""The queue seam (shaped like arq): jobs wait in one line per channel and are *claimed* by workers.

Rules every implementation keeps (the contract tests in ``tests/contract/test_backends.py`` check them
for the memory and the Redis version alike):

- ``enqueue`` is idempotent on ``job.id`` (the same id twice is one job, even when the queue is
  full) and returns how many jobs of the channel are ahead (waiting or in progress); it raises
  ``QueueFull`` when ``max_waiting`` jobs already wait in the channel, and ``QueueAtCapacity`` (a
  ``QueueFull``) when ``max_total`` jobs already wait across all channels. Jobs coming back (a
  release, a lapse) are never refused, so the total may pass ``max_total`` by the jobs in progress.
- ``claim`` hands out the oldest waiting job of a channel that has fewer than
  ``channel_concurrency`` jobs in progress, skipping jobs whose thread already has one in progress
  (a thread is always answered one at a time, in order). Channels are served oldest head first.
- A claimed job is held under a lease of ``lease_seconds``; ``heartbeat`` renews it. A job whose
  lease lapsed (its worker died) is claimable again, ahead of its channel's waiting jobs, with
  ``tries`` incremented; ``heartbeat``/``complete`` by the old worker then return False.
- ``release`` hands an in-progress job back to the front of its line (graceful shutdown).
"""

from __future__ import annotations

from typing import Protocol

from bot.errors import ThreadlineError
from bot.jobs import Job

DEFAULT_MAX_TOTAL = 1000  # waiting jobs across all channels (BOT_MAX_QUEUED_TOTAL)


class QueueFull(ThreadlineError):
    """The channel already has the maximum number of waiting requests."""


class QueueAtCapacity(QueueFull):
    """All channels together already have the maximum number of waiting requests (the queue's
    overall memory bound). A ``QueueFull``, so a caller that answers "busy" answers this too."""


class QueueUnavailable(ThreadlineError):
    """The queue's backend cannot be reached (Redis down)."""


class JobQueue(Protocol):
    async def enqueue(self, *, job: Job, max_waiting: int) -> int:
        """Queue ``job`` at the end of its channel's line; returns the number of jobs ahead of it."""
        ...

    async def claim(self, *, worker: str, timeout: float) -> Job | None:
        """Wait up to ``timeout`` seconds for a job this worker may start; lease it to ``worker``."""
        ...

    async def heartbeat(self, *, job: Job) -> bool:
        """Renew the lease of a claimed job; False if the lease was lost (another worker has it)."""
        ...

    async def complete(self, *, job: Job) -> bool:
        """The job is done (answered or failed for good): forget it. False if the lease was lost."""
        ...

    async def release(self, *, job: Job) -> None:
        """Give a claimed job back, at the front of its channel's line, for another worker."""
        ...

    async def waiting(self, *, queue_key: str) -> list[Job]:
        """The waiting jobs of a channel, in the order they will be claimed (for position notices)."""
        ...

    async def ahead(self, *, queue_key: str) -> int:
        """How many jobs of the channel are waiting or in progress."""
        ...

    async def counts(self, *, queue_key: str) -> tuple[int, int]:
        """How many jobs of the channel are (waiting, in progress), without reading them; one round
        trip (before the ack: the busy check and the position both come from it)."""
        ...

    async def close(self) -> None:
        """Release resources; jobs stay where they are."""
        ...
