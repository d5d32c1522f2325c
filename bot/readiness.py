"""Readiness that reflects now: each dependency re-checked on a schedule, the results cached.

``/readyz`` answers from the cache and never waits on a dependency itself, so a probe is cheap and
bounded however slow Slack, the model server or Redis is. A background task (owned by the Runtime,
started and stopped with it) runs every check every ``interval`` seconds, all at once, each cut off
after ``timeout`` seconds; a round never overlaps the next. A check is a coroutine function that
returns ``None`` when the dependency is fine, else a short description of what is wrong (never a
secret). Changes are logged once (a warning when a dependency goes bad, info when it recovers), not
every round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from bot.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[str | None]]
OK = "ok"
NOT_CHECKED = "not checked yet"


class Readiness:
    def __init__(self, checks: Mapping[str, Check], *, interval: float, timeout: float) -> None:
        self._checks = dict(checks)
        self.interval = interval
        self.timeout = timeout
        self.results: dict[str, str] = dict.fromkeys(self._checks, NOT_CHECKED)
        self.rounds = 0  # completed rounds of checks
        self._task: asyncio.Task[None] | None = None

    def record(self, name: str, problem: str | None) -> None:
        """Set one result (a check done elsewhere, e.g. the start-up auth.test); logs a change."""
        before = self.results.get(name)
        now = OK if problem is None else problem
        self.results[name] = now
        if before == now or before is None:
            return
        if now == OK:
            if before != NOT_CHECKED:
                logger.info("readiness: %s is ok again", name)
        else:
            logger.warning("readiness: %s is not ready (%s)", name, now)

    async def _run_one(self, name: str) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                problem = await self._checks[name]()
        except TimeoutError:
            problem = f"no answer within {self.timeout:g}s"
        except Exception as err:  # a check that breaks says so instead of ending the checker
            logger.exception("readiness check %s failed", name)
            problem = f"check failed ({type(err).__name__})"
        self.record(name, problem)

    async def refresh(self, names: Iterable[str] | None = None) -> None:
        """Run the checks (all, or ``names``) concurrently, each time-boxed; update the results."""
        chosen = list(self._checks if names is None else names)
        async with asyncio.TaskGroup() as group:
            for name in chosen:
                group.create_task(self._run_one(name), name=f"readiness-{name}")
        self.rounds += 1

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="readiness")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)  # a schedule: there is no event for "time to look again"
            await self.refresh()

    async def close(self) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None
        await cancel_and_wait(task)
