"""Limits for one process: sliding logs, counters and the answer map in dicts, with expiry."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

from bot import window as sliding

Clock = Callable[[], float]


class MemoryLimitStore:
    def __init__(self, *, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._logs: OrderedDict[str, deque[float]] = OrderedDict()
        self._counters: OrderedDict[str, tuple[float, int]] = OrderedDict()  # key -> (expires, total)
        self._answers: OrderedDict[tuple[str, str, str], tuple[float, str]] = OrderedDict()
        self._votes: OrderedDict[str, tuple[float, set[str]]] = OrderedDict()  # key -> (expires, reactions)

    def _bound(self, mapping: OrderedDict[str, deque[float]] | OrderedDict[str, tuple[float, int]]) -> None:
        while len(mapping) > self._max_keys:
            mapping.popitem(last=False)

    async def take(self, *, key: str, limit: int, window: float) -> float:
        now = self._clock()
        log = self._logs.setdefault(key, deque())
        self._logs.move_to_end(key)
        sliding.expire(log, now, window)
        if len(log) < limit:
            log.append(now)
            self._bound(self._logs)
            return 0.0
        # When the entry that blocks one more has left the window.
        return max(sliding.room_at(log, limit - 1, now, window) - now, 0.001)

    async def add_usage(self, *, key: str, amount: int, ttl: float) -> int:
        now = self._clock()
        expires, total = self._counters.get(key, (now + ttl, 0))
        if expires <= now:
            expires, total = now + ttl, 0
        total += amount
        self._counters[key] = (expires, total)
        self._counters.move_to_end(key)
        self._bound(self._counters)
        return total

    async def usage(self, *, key: str) -> int:
        entry = self._counters.get(key)
        if entry is None or entry[0] <= self._clock():
            return 0
        return entry[1]

    async def remember_answer(
        self, *, team_id: str, channel: str, ts: str, request_id: str, ttl: float
    ) -> None:
        key = (team_id, channel, ts)
        self._answers[key] = (self._clock() + ttl, request_id)
        self._answers.move_to_end(key)
        while len(self._answers) > self._max_keys:
            self._answers.popitem(last=False)

    async def answer_request(self, *, team_id: str, channel: str, ts: str) -> str | None:
        entry = self._answers.get((team_id, channel, ts))
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    async def add_vote(self, *, key: str, member: str, ttl: float) -> bool:
        now = self._clock()
        expires, members = self._votes.get(key, (now, set()))
        if expires <= now:
            members = set()
        new = not members
        members.add(member)
        self._votes[key] = (now + ttl, members)
        self._votes.move_to_end(key)
        while len(self._votes) > self._max_keys:
            self._votes.popitem(last=False)
        return new

    async def remove_vote(self, *, key: str, member: str) -> bool:
        entry = self._votes.get(key)
        if entry is None or entry[0] <= self._clock() or member not in entry[1]:
            return False
        entry[1].discard(member)
        if entry[1]:
            return False
        del self._votes[key]
        return True

    async def close(self) -> None:
        return None
