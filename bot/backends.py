"""Chooses the implementation of every seam once, at start: in memory (one process), or Redis when
``REDIS_URL`` is set (replicas share the queue, the store, dedup, the edit budget and signals)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.queue.base import JobQueue
from bot.queue.memory import MemoryQueue
from bot.ratelimit.base import EditBudget, Priority
from bot.ratelimit.memory import MemoryEditBudget
from bot.settings import Settings
from bot.signals import MemorySignals, RedisSignals, Signals
from bot.store.base import ConversationStore, Deduplicator, StoreUnavailable
from bot.store.memory import MemoryConversationStore, MemoryDeduplicator

logger = logging.getLogger(__name__)


class ResilientBudget:
    """The shared (Redis) budget, falling back to a local one while Redis is unreachable: an answer
    must not fail because its edits cannot be counted. Locally the same limit holds per replica."""

    def __init__(self, primary: EditBudget, fallback: EditBudget) -> None:
        self.primary = primary
        self.fallback = fallback

    async def acquire(self, *, team_id: str, priority: Priority, answer_id: str | None = None) -> None:
        try:
            await self.primary.acquire(team_id=team_id, priority=priority, answer_id=answer_id)
        except StoreUnavailable:
            logger.warning("edit budget unavailable in Redis; counting locally")
            await self.fallback.acquire(team_id=team_id, priority=priority, answer_id=answer_id)

    async def live(self, *, team_id: str, answer_id: str, alive: bool) -> None:
        await self.fallback.live(team_id=team_id, answer_id=answer_id, alive=alive)
        try:
            await self.primary.live(team_id=team_id, answer_id=answer_id, alive=alive)
        except StoreUnavailable:
            pass

    async def pause(self, *, team_id: str, seconds: float) -> None:
        await self.fallback.pause(team_id=team_id, seconds=seconds)
        try:
            await self.primary.pause(team_id=team_id, seconds=seconds)
        except StoreUnavailable:
            pass


@dataclass
class Backends:
    queue: JobQueue
    store: ConversationStore
    dedup: Deduplicator
    budget: EditBudget
    post_pacer: EditBudget
    signals: Signals
    redis: aioredis.Redis | None = None

    async def close(self) -> None:
        await self.signals.close()
        await self.queue.close()
        if self.redis is not None:
            await self.redis.aclose()


def build(settings: Settings) -> Backends:
    s = settings
    # The budget counts an edit when it grants it; Slack counts it when it arrives, a moment later.
    # A second a minute of margin keeps the budget's count from ever being below Slack's.
    edit_window = s.edit_window_seconds * (1 + 1 / 60)
    local_budget = MemoryEditBudget(limit=s.edits_per_minute, window=edit_window)
    burst_window = s.posts_per_channel_burst / s.posts_per_channel_per_second
    local_pacer = MemoryEditBudget(limit=s.posts_per_channel_burst, window=burst_window, reserve_fraction=0)
    if not s.redis_url:
        return Backends(
            queue=MemoryQueue(
                channel_concurrency=s.channel_concurrency,
                lease_seconds=s.lease_seconds,
                max_total=s.max_queued_total,
            ),
            store=MemoryConversationStore(ttl_seconds=s.conversation_ttl_seconds),
            dedup=MemoryDeduplicator(ttl_seconds=s.dedup_ttl_seconds),
            budget=local_budget,
            post_pacer=local_pacer,
            signals=MemorySignals(),
        )
    from bot.queue.redis import RedisQueue
    from bot.ratelimit.redis import RedisEditBudget
    from bot.redis import connect
    from bot.store.redis import RedisConversationStore, RedisDeduplicator

    redis = connect(s.redis_url)
    return Backends(
        queue=RedisQueue(
            redis,
            channel_concurrency=s.channel_concurrency,
            lease_seconds=s.lease_seconds,
            max_total=s.max_queued_total,
        ),
        store=RedisConversationStore(redis, ttl_seconds=s.conversation_ttl_seconds),
        dedup=RedisDeduplicator(redis, ttl_seconds=s.dedup_ttl_seconds),
        budget=ResilientBudget(
            RedisEditBudget(redis, limit=s.edits_per_minute, window=edit_window), local_budget
        ),
        post_pacer=ResilientBudget(
            RedisEditBudget(redis, limit=s.posts_per_channel_burst, window=burst_window, reserve_fraction=0),
            local_pacer,
        ),
        signals=RedisSignals(redis),
        redis=redis,
    )
