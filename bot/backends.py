"""Chooses the implementation of every seam once, at start: in memory (one process), or Redis when
``REDIS_URL`` is set (replicas share the queue, the store, dedup, every Slack method's budget and
signals)."""

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

    async def try_reserve(self, *, team_id: str, answer_id: str) -> bool:
        try:
            return await self.primary.try_reserve(team_id=team_id, answer_id=answer_id)
        except StoreUnavailable:
            logger.warning("budget unavailable in Redis; counting locally")
            return await self.fallback.try_reserve(team_id=team_id, answer_id=answer_id)

    async def progress_interval(self, *, team_id: str) -> float:
        try:
            return await self.primary.progress_interval(team_id=team_id)
        except StoreUnavailable:
            return await self.fallback.progress_interval(team_id=team_id)

    async def pause(self, *, team_id: str, seconds: float) -> None:
        await self.fallback.pause(team_id=team_id, seconds=seconds)
        try:
            await self.primary.pause(team_id=team_id, seconds=seconds)
        except StoreUnavailable:
            pass


# Slack's per-workspace limits of the methods the bot paces itself (Tier 3: about 50 a minute each).
# chat.update's budget is ``BOT_EDITS_PER_MINUTE``; chat.postMessage is paced per channel.
PACED_PER_WORKSPACE = ("reactions.add", "reactions.remove")
STATUS_SECONDS = 1.0  # assistant.threads.setStatus: about one call a second per thread


@dataclass
class Backends:
    queue: JobQueue
    store: ConversationStore
    dedup: Deduplicator
    budgets: dict[str, EditBudget]  # Slack method -> its budget (``bot.gateway.pacing``)
    signals: Signals
    redis: aioredis.Redis | None = None

    async def close(self) -> None:
        await self.signals.close()
        await self.queue.close()
        if self.redis is not None:
            await self.redis.aclose()


def build(settings: Settings) -> Backends:
    s = settings
    # A budget counts a call when it grants it; Slack counts it when it arrives, a moment later.
    # A second a minute of margin keeps the budget's count from ever being below Slack's.
    window = s.edit_window_seconds * (1 + 1 / 60)
    # Posts: a channel's burst per its window, with the same margin and 50 ms more (a post's grant
    # and its arrival at Slack are further apart when the loop is busy starting answers).
    burst_window = s.posts_per_channel_burst / s.posts_per_channel_per_second * (1 + 1 / 60) + 0.05
    # (limit, window, reserve_fraction) of each paced method
    specs: dict[str, tuple[int, float, float]] = {
        "chat.update": (s.edits_per_minute, window, 0.2),
        "chat.postMessage": (s.posts_per_channel_burst, burst_window, 0.0),
        **{method: (s.reactions_per_minute, window, 0.0) for method in PACED_PER_WORKSPACE},
        "conversations.replies": (s.thread_reads_per_minute, window, 0.0),
        # Native streams (per workspace): starts and stops are reserved before a stream is chosen.
        "chat.startStream": (s.stream_starts_per_minute, window, 0.0),
        "chat.stopStream": (s.stream_stops_per_minute, window, 0.0),
        "chat.appendStream": (s.stream_appends_per_minute, window, 0.0),
        # The thread status: about one call a second per thread (keyed by thread).
        "assistant.threads.setStatus": (1, STATUS_SECONDS * (1 + 1 / 60) + 0.05, 0.0),
    }
    local: dict[str, EditBudget] = {
        method: MemoryEditBudget(limit=limit, window=w, reserve_fraction=reserve)
        for method, (limit, w, reserve) in specs.items()
    }
    if not s.redis_url:
        return Backends(
            queue=MemoryQueue(
                channel_concurrency=s.channel_concurrency,
                lease_seconds=s.lease_seconds,
                max_total=s.max_queued_total,
            ),
            store=MemoryConversationStore(ttl_seconds=s.conversation_ttl_seconds),
            dedup=MemoryDeduplicator(ttl_seconds=s.dedup_ttl_seconds),
            budgets=local,
            signals=MemorySignals(),
        )
    from bot.queue.redis import RedisQueue
    from bot.ratelimit.redis import RedisEditBudget
    from bot.redis import KEY_PREFIX, connect
    from bot.store.redis import RedisConversationStore, RedisDeduplicator

    redis = connect(s.redis_url)

    def shared(method: str) -> EditBudget:
        limit, w, reserve = specs[method]
        # chat.update and posts keep the key names of docs/redis.md; the others get their own.
        prefix = KEY_PREFIX if method in ("chat.update", "chat.postMessage") else f"{KEY_PREFIX}{method}:"
        return ResilientBudget(
            RedisEditBudget(redis, limit=limit, window=w, reserve_fraction=reserve, prefix=prefix),
            local[method],
        )

    return Backends(
        queue=RedisQueue(
            redis,
            channel_concurrency=s.channel_concurrency,
            lease_seconds=s.lease_seconds,
            max_total=s.max_queued_total,
        ),
        store=RedisConversationStore(redis, ttl_seconds=s.conversation_ttl_seconds),
        dedup=RedisDeduplicator(redis, ttl_seconds=s.dedup_ttl_seconds),
        budgets={method: shared(method) for method in specs},
        signals=RedisSignals(redis),
        redis=redis,
    )
