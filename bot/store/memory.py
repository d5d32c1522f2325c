"""In-memory stores for one process. They copy on read and write, so they behave like Redis."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from bot.context import Turn

Clock = Callable[[], float]


class MemoryConversationStore:
    def __init__(
        self, *, ttl_seconds: float, max_threads: int = 10_000, clock: Clock = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._max_threads = max_threads
        self._clock = clock
        self._threads: OrderedDict[tuple[str, str, str], tuple[float, list[Turn]]] = OrderedDict()

    async def get_turns(self, *, team_id: str, channel: str, thread_ts: str) -> list[Turn] | None:
        key = (team_id, channel, thread_ts)
        entry = self._threads.get(key)
        if entry is None:
            return None
        expires, turns = entry
        if expires <= self._clock():
            del self._threads[key]
            return None
        return list(turns)  # Turn is frozen; a new list is a full copy

    async def append_turns(self, *, team_id: str, channel: str, thread_ts: str, turns: list[Turn]) -> None:
        key = (team_id, channel, thread_ts)
        existing = await self.get_turns(team_id=team_id, channel=channel, thread_ts=thread_ts) or []
        self._threads[key] = (self._clock() + self._ttl, existing + list(turns))
        self._threads.move_to_end(key)
        while len(self._threads) > self._max_threads:
            self._threads.popitem(last=False)


class MemoryDeduplicator:
    def __init__(self, *, ttl_seconds: float, clock: Clock = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def _expire(self, now: float) -> None:
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[key]

    async def first_time(self, *, keys: list[str]) -> bool:
        now = self._clock()
        self._expire(now)
        if any(key in self._seen for key in keys):
            return False
        for key in keys:
            self._seen[key] = now + self._ttl
        return True
