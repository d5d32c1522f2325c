"""The limits seam: counters that must be shared by every replica (``memory`` for one process,
``redis`` for several). The policy (which keys, which limits, what the user is told) lives in
``bot.limits.policy`` and ``bot.engine``; a store only counts.

- ``take`` is a sliding log: an event is counted only if fewer than ``limit`` were counted under
  ``key`` in the last ``window`` seconds (the strictest reading of "N per window"); a refused event
  is not counted.
- ``add_usage``/``usage`` are plain counters that expire ``ttl`` seconds after their first use (a
  daily token budget keys them by day).
- ``remember_answer``/``answer_request`` map a bot answer's message (team, channel, ts) to the id of
  the request it answers, so that a reaction on it (which carries no message metadata) can be
  attributed.
- ``add_vote``/``remove_vote`` keep one user's vote of one kind on one answer as the set of reactions
  that cast it (``+1`` and ``+1::skin-tone-2`` are both 👍), so a vote counts once while it stands
  (a redelivered event, another skin tone), and is withdrawn when the last of them is removed.
"""

from __future__ import annotations

from typing import Protocol


class LimitStore(Protocol):
    async def take(self, *, key: str, limit: int, window: float) -> float:
        """Count one event under ``key`` if fewer than ``limit`` were counted in the last ``window``
        seconds and return 0; otherwise count nothing and return the seconds until one is allowed."""
        ...

    async def add_usage(self, *, key: str, amount: int, ttl: float) -> int:
        """Add ``amount`` to the counter ``key`` (created with a lifetime of ``ttl`` seconds); returns
        the new total."""
        ...

    async def usage(self, *, key: str) -> int:
        """The counter ``key``; 0 if it does not exist (or expired)."""
        ...

    async def remember_answer(
        self, *, team_id: str, channel: str, ts: str, request_id: str, ttl: float
    ) -> None:
        """The bot message ``ts`` in ``channel`` answers ``request_id`` (kept ``ttl`` seconds)."""
        ...

    async def answer_request(self, *, team_id: str, channel: str, ts: str) -> str | None:
        """The request id answered by the message ``ts``; ``None`` if it is not a known answer."""
        ...

    async def add_vote(self, *, key: str, member: str, ttl: float) -> bool:
        """Add the reaction ``member`` to the vote ``key`` (kept ``ttl`` seconds from now); True when
        the vote had no reaction before: it is a new vote."""
        ...

    async def remove_vote(self, *, key: str, member: str) -> bool:
        """Remove the reaction ``member`` from the vote ``key``; True when that was its last one: the
        vote is withdrawn."""
        ...

    async def close(self) -> None:
        """Release resources (the Redis client is owned by whoever made it)."""
        ...
