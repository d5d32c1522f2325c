"""Pacing: every Slack method that Slack rate-limits per workspace has a budget, and every call of it
takes a slot first.

``Pacing`` is the one place that knows this. A gateway call names its method and workspace (and, for
edits, a priority); ``slot`` waits for that method's budget; ``rate_limited`` is what a 429 does: the
method's budget (only that method's) is paused for Retry-After and the metric counts it. Budgets are
``bot.ratelimit`` instances (memory, or Redis shared by replicas), one per method, built in
``bot.backends``. A method with no budget is not paced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from bot.constants import MAX_PAUSE_SECONDS
from bot.errors import SlackError
from bot.ratelimit.base import EditBudget, Priority

logger = logging.getLogger(__name__)


class GaveWay(Exception):
    """A paced call stopped waiting for its slot because its ``give_way`` event was set (a progress
    edit of an answer whose stream ended meanwhile: its final edit goes instead)."""


class Pacing:
    def __init__(
        self,
        budgets: Mapping[str, EditBudget],
        *,
        on_rate_limited: Callable[[str], None] | None = None,
    ) -> None:
        self._budgets = dict(budgets)
        self._on_rate_limited = on_rate_limited

    def paces(self, method: str) -> bool:
        return method in self._budgets

    async def slot(
        self,
        method: str,
        *,
        key: str,
        priority: Priority = Priority.FINAL,
        answer_id: str | None = None,
        give_way: asyncio.Event | None = None,
        timeout: float | None = None,
    ) -> None:
        """Wait for one call of ``method`` for ``key`` (a workspace, or for posts a channel).
        Raises ``GaveWay`` when ``give_way`` is set first, ``TimeoutError`` after ``timeout``."""
        budget = self._budgets.get(method)
        if budget is None:
            return
        async with asyncio.timeout(timeout):
            if give_way is None:
                await budget.acquire(team_id=key, priority=priority, answer_id=answer_id)
                return
            if give_way.is_set():
                raise GaveWay()
            acquire = asyncio.ensure_future(budget.acquire(team_id=key, priority=priority))
            stop = asyncio.ensure_future(give_way.wait())
            try:
                await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                if not acquire.done():
                    acquire.cancel()
                    await asyncio.gather(acquire, return_exceptions=True)
            if acquire.cancelled():
                raise GaveWay()
            acquire.result()

    async def rate_limited(self, method: str, *, key: str, retry_after: float) -> None:
        """Slack answered 429: hold every call of ``method`` for ``key`` for ``retry_after`` (at most
        ``MAX_PAUSE_SECONDS``)."""
        retry_after = min(retry_after, MAX_PAUSE_SECONDS)
        if self._on_rate_limited is not None:
            self._on_rate_limited(method)
        budget = self._budgets.get(method)
        logger.warning("%s rate limited; pausing it for %.1fs", method, retry_after)
        if budget is not None:
            await budget.pause(team_id=key, seconds=retry_after)
        else:
            await asyncio.sleep(retry_after)

    async def failed(self, method: str, *, key: str, err: SlackError) -> None:
        """A call of ``method`` for ``key`` raised ``err``: if it was a 429, ``rate_limited``."""
        if err.retry_after is not None:
            await self.rate_limited(method, key=key, retry_after=err.retry_after)

    async def reserve(self, method: str, *, key: str, answer_id: str) -> bool:
        """Keep one call of ``method`` for ``answer_id`` if the budget has room now (never waits);
        the call's ``slot`` (with this ``answer_id``) then takes the kept room at once. A method
        without a budget always has room. ``live(..., alive=False)`` gives an unused one back."""
        budget = self._budgets.get(method)
        if budget is None:
            return True
        return await budget.try_reserve(team_id=key, answer_id=answer_id)

    async def interval(self, method: str, *, key: str) -> float:
        """The least time between one answer's progress calls of ``method`` (0: not paced)."""
        budget = self._budgets.get(method)
        return 0.0 if budget is None else await budget.progress_interval(team_id=key)

    async def live(self, method: str, *, key: str, answer_id: str, alive: bool) -> None:
        """An answer starts (or stops) needing a final call of ``method``: its room is kept."""
        budget = self._budgets.get(method)
        if budget is not None:
            await budget.live(team_id=key, answer_id=answer_id, alive=alive)
