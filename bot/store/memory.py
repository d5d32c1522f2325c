"""In-memory stores for one process. They copy on read and write, so they behave like Redis."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

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
        self._requests: OrderedDict[str, tuple[float, str]] = OrderedDict()

    async def has_turns(self, *, team_id: str, channel: str, thread_ts: str) -> bool:
        return await self.get_turns(team_id=team_id, channel=channel, thread_ts=thread_ts) is not None

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

    async def remember_request(self, *, request_id: str, data: dict[str, Any]) -> None:
        self._requests[request_id] = (self._clock() + self._ttl, json.dumps(data))
        self._requests.move_to_end(request_id)
        while len(self._requests) > self._max_threads:
            self._requests.popitem(last=False)

    async def recall_request(self, *, request_id: str) -> dict[str, Any] | None:
        entry = self._requests.get(request_id)
        if entry is None or entry[0] <= self._clock():
            return None
        data: dict[str, Any] = json.loads(entry[1])
        return data


class MemoryDeduplicator:
    def __init__(self, *, ttl_seconds: float, clock: Clock = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._claims: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def _expire(self, now: float) -> None:
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[key]
        while self._claims:
            key, (_, expires) = next(iter(self._claims.items()))
            if expires > now:
                break
            del self._claims[key]

    async def first_time(self, *, keys: list[str]) -> bool:
        now = self._clock()
        self._expire(now)
        if any(key in self._seen for key in keys):
            return False
        for key in keys:
            self._seen[key] = now + self._ttl
        return True

    async def claim(self, *, key: str, value: str) -> str:
        now = self._clock()
        self._expire(now)
        if value and (key not in self._claims or self._claims[key][1] <= now):
            self._claims[key] = (value, now + self._ttl)
        held = self._claims.get(key)
        return held[0] if held is not None and held[1] > now else ""
