"""In-process edit budget: a sliding log of send times per workspace, priority waiters, pauses.

Lower priorities may not use the last part of the window (``reserve``), so that an answer that is
about to finish always finds room for its final edit instead of waiting up to a whole window behind
progress edits. Waiting is event driven: one timer per workspace, armed for the moment the next slot
frees up or a pause ends; no polling.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.ratelimit.base import Priority


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    future: asyncio.Future[None] = field(compare=False)


@dataclass
class _Workspace:
    sent: deque[float] = field(default_factory=deque)
    waiters: list[_Waiter] = field(default_factory=list)
    paused_until: float = 0.0
    timer: asyncio.TimerHandle | None = None


class MemoryEditBudget:
    def __init__(
        self,
        *,
        limit: int,
        window: float = 60.0,
        reserve_fraction: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self._clock = clock
        reserve = min(limit - 1, math.ceil(limit * reserve_fraction))
        # How many slots of the window each priority may fill.
        self._ceiling = {
            Priority.FINAL: limit,
            Priority.FIRST_WORDS: limit - reserve // 2,
            Priority.PROGRESS: limit - reserve,
            Priority.NOTICE: limit - reserve,
        }
        self._workspaces: dict[str, _Workspace] = {}
        self._seq = itertools.count()

    def used(self, team_id: str) -> int:
        ws = self._workspaces.get(team_id)
        if ws is None:
            return 0
        self._expire(ws, self._clock())
        return len(ws.sent)

    def _expire(self, ws: _Workspace, now: float) -> None:
        while ws.sent and ws.sent[0] <= now - self.window:
            ws.sent.popleft()

    def _can_send(self, ws: _Workspace, priority: Priority, now: float) -> bool:
        return now >= ws.paused_until and len(ws.sent) < self._ceiling[priority]

    async def acquire(self, *, team_id: str, priority: Priority) -> None:
        ws = self._workspaces.setdefault(team_id, _Workspace())
        now = self._clock()
        self._expire(ws, now)
        if not ws.waiters and self._can_send(ws, priority, now):
            ws.sent.append(now)
            return
        waiter = _Waiter(int(priority), next(self._seq), asyncio.get_running_loop().create_future())
        heapq.heappush(ws.waiters, waiter)
        self._pump(team_id)
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                # Granted just as we were cancelled: give the slot back.
                self._give_back(ws)
            raise

    def _give_back(self, ws: _Workspace) -> None:
        if ws.sent:
            ws.sent.pop()

    async def pause(self, *, team_id: str, seconds: float) -> None:
        ws = self._workspaces.setdefault(team_id, _Workspace())
        ws.paused_until = max(ws.paused_until, self._clock() + seconds)
        self._pump(team_id)

    def _pump(self, team_id: str) -> None:
        """Grant every waiter that can go now, highest priority first; arm the timer for the rest."""
        ws = self._workspaces[team_id]
        if ws.timer is not None:
            ws.timer.cancel()
            ws.timer = None
        now = self._clock()
        self._expire(ws, now)
        while ws.waiters:
            head = ws.waiters[0]
            if head.future.done():  # cancelled while waiting
                heapq.heappop(ws.waiters)
                continue
            if not self._can_send(ws, Priority(head.priority), now):
                break
            heapq.heappop(ws.waiters)
            ws.sent.append(now)
            head.future.set_result(None)
        if ws.waiters:
            wake = ws.paused_until
            if now >= ws.paused_until:
                # The head waits for its ceiling: the oldest send that must leave the window.
                ceiling = self._ceiling[Priority(ws.waiters[0].priority)]
                index = len(ws.sent) - ceiling
                wake = ws.sent[index] + self.window if 0 <= index < len(ws.sent) else now
            delay = max(0.0, wake - now) + 1e-3
            ws.timer = asyncio.get_running_loop().call_later(delay, self._pump, team_id)
