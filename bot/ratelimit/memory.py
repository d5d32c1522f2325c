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

from bot import window as sliding
from bot.ratelimit.base import Priority, progress_interval, refuses_non_final


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    future: asyncio.Future[None] = field(compare=False)
    answer_id: str | None = field(default=None, compare=False)


@dataclass
class _Workspace:
    sent: deque[float] = field(default_factory=deque)
    waiters: list[_Waiter] = field(default_factory=list)
    paused_until: float = 0.0
    timer: asyncio.TimerHandle | None = None
    live: set[str] = field(default_factory=set)


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
        # How many slots of the window each priority may fill (on top of the room kept for the
        # finals of live answers, see ``refuses_non_final``): progress and notices may fill only half
        # the window, so first words and finals, which every answer needs, keep the other half even
        # when answers follow each other all day (a channel with a long queue).
        self._ceiling = {
            Priority.FINAL: limit,
            Priority.FIRST_WORDS: limit,
            Priority.PROGRESS: min(limit - reserve, max(1, limit // 2)),
            Priority.NOTICE: min(limit - reserve, max(1, limit // 2)),
        }
        self._workspaces: dict[str, _Workspace] = {}
        self._seq = itertools.count()

    def used(self, team_id: str) -> int:
        ws = self._workspaces.get(team_id)
        if ws is None:
            return 0
        sliding.expire(ws.sent, self._clock(), self.window)
        return len(ws.sent)

    def _allowed_at(self, ws: _Workspace, priority: Priority, used: int) -> bool:
        if used >= self._ceiling[priority]:
            return False
        if priority is Priority.FINAL:
            return True
        return not refuses_non_final(used=used, live=len(ws.live), limit=self.limit)

    def _can_send(self, ws: _Workspace, priority: Priority, now: float) -> bool:
        return now >= ws.paused_until and self._allowed_at(ws, priority, len(ws.sent))

    async def progress_interval(self, *, team_id: str) -> float:
        ws = self._workspaces.get(team_id)
        live = len(ws.live) if ws is not None else 0
        return progress_interval(window=self.window, live=live, ceiling=self._ceiling[Priority.PROGRESS])

    async def live(self, *, team_id: str, answer_id: str, alive: bool) -> None:
        ws = self._workspaces.setdefault(team_id, _Workspace())
        if alive:
            ws.live.add(answer_id)
        else:
            ws.live.discard(answer_id)
            if ws.waiters:
                self._pump(team_id)

    async def try_reserve(self, *, team_id: str, answer_id: str) -> bool:
        ws = self._workspaces.setdefault(team_id, _Workspace())
        now = self._clock()
        sliding.expire(ws.sent, now, self.window)
        if now < ws.paused_until or len(ws.sent) + len(ws.live | {answer_id}) > self.limit:
            return False
        ws.live.add(answer_id)
        return True

    async def acquire(self, *, team_id: str, priority: Priority, answer_id: str | None = None) -> None:
        ws = self._workspaces.setdefault(team_id, _Workspace())
        now = self._clock()
        sliding.expire(ws.sent, now, self.window)
        if not ws.waiters and self._can_send(ws, priority, now):
            ws.sent.append(now)
            if priority is Priority.FINAL and answer_id is not None:
                ws.live.discard(answer_id)
            return
        waiter = _Waiter(
            int(priority), next(self._seq), asyncio.get_running_loop().create_future(), answer_id
        )
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
        sliding.expire(ws.sent, now, self.window)
        while ws.waiters:
            head = ws.waiters[0]
            if head.future.done():  # cancelled while waiting
                heapq.heappop(ws.waiters)
                continue
            if not self._can_send(ws, Priority(head.priority), now):
                break
            heapq.heappop(ws.waiters)
            ws.sent.append(now)
            if head.priority == Priority.FINAL and head.answer_id is not None:
                ws.live.discard(head.answer_id)
            head.future.set_result(None)
        if ws.waiters:
            wake = ws.paused_until
            if now >= ws.paused_until:
                # The head waits until enough sends have left the window for it to be allowed.
                priority = Priority(ws.waiters[0].priority)
                used = len(ws.sent)
                start = min(used, self._ceiling[priority] - 1)
                allowed = next((u for u in range(start, -1, -1) if self._allowed_at(ws, priority, u)), 0)
                wake = sliding.room_at(ws.sent, allowed, now, self.window)
            delay = max(0.0, wake - now) + 1e-3
            ws.timer = asyncio.get_running_loop().call_later(delay, self._pump, team_id)
