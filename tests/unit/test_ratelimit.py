"""The edit budget: never more than `limit` grants in any window; priority; pauses."""

import asyncio
import time

from bot.ratelimit import MemoryEditBudget, Priority


async def test_never_more_than_limit_in_any_window() -> None:
    budget = MemoryEditBudget(limit=5, window=0.4, reserve_fraction=0)
    grants: list[float] = []

    async def edit() -> None:
        await budget.acquire(team_id="T", priority=Priority.FINAL)
        grants.append(time.monotonic())

    await asyncio.gather(*(edit() for _ in range(12)))
    grants.sort()
    for i in range(len(grants) - 5):
        assert grants[i + 5] - grants[i] >= 0.4 - 1e-3
    assert grants[-1] - grants[0] < 1.2  # and it does not wait longer than it must


async def test_final_goes_before_progress() -> None:
    budget = MemoryEditBudget(limit=2, window=0.3, reserve_fraction=0)
    for _ in range(2):
        await budget.acquire(team_id="T", priority=Priority.FINAL)
    order: list[str] = []

    async def edit(name: str, priority: Priority) -> None:
        await budget.acquire(team_id="T", priority=priority)
        order.append(name)

    progress = asyncio.create_task(edit("progress", Priority.PROGRESS))
    await asyncio.sleep(0.01)
    final = asyncio.create_task(edit("final", Priority.FINAL))
    await asyncio.gather(progress, final)
    assert order == ["final", "progress"]


async def test_progress_fills_at_most_half_the_window() -> None:
    budget = MemoryEditBudget(limit=10, window=5.0, reserve_fraction=0.2)
    for _ in range(5):
        await budget.acquire(team_id="T", priority=Priority.PROGRESS)
    blocked = asyncio.create_task(budget.acquire(team_id="T", priority=Priority.PROGRESS))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    await asyncio.wait_for(budget.acquire(team_id="T", priority=Priority.FINAL), 0.1)
    blocked.cancel()


async def test_workspaces_are_independent_and_cancel_is_clean() -> None:
    budget = MemoryEditBudget(limit=1, window=5.0, reserve_fraction=0)
    await budget.acquire(team_id="A", priority=Priority.FINAL)
    await asyncio.wait_for(budget.acquire(team_id="B", priority=Priority.FINAL), 0.1)
    waiting = asyncio.create_task(budget.acquire(team_id="A", priority=Priority.FINAL))
    await asyncio.sleep(0.01)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert budget.used("A") == 1


async def test_pause_holds_the_workspace() -> None:
    budget = MemoryEditBudget(limit=100, window=60.0)
    await budget.pause(team_id="T", seconds=0.3)
    start = time.monotonic()
    await budget.acquire(team_id="T", priority=Priority.FINAL)
    assert time.monotonic() - start >= 0.29
