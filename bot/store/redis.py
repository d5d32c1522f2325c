"""The conversation store and the delivery dedup in Redis, shared by every replica.

Keys (``P`` is the prefix, ``threadline:`` by default)::

    P conv:{team}:{channel}:{thread_ts}   list     one JSON turn per element, oldest first; TTL
    P request:{id}                        string   a request's JSON for its Retry button; TTL
    P dedup:{key}                         string   "1", a delivery seen (event id, channel + ts); TTL

Appending is RPUSH + LTRIM + PEXPIRE in one MULTI, so a reader never sees turns without their TTL
and two replicas appending to one thread interleave whole batches. Dedup marks all of a delivery's
keys in one Lua script: either none of them existed and all are set, or nothing changes.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from bot.context import Turn
from bot.redis import KEY_PREFIX, milliseconds, unavailable_as
from bot.redis import key as redis_key
from bot.store.base import StoreUnavailable

DEFAULT_PREFIX = KEY_PREFIX


def conversation_key(prefix: str, team_id: str, channel: str, thread_ts: str) -> str:
    return redis_key(prefix, "conv", team_id, channel, thread_ts)


def request_key(prefix: str, request_id: str) -> str:
    return redis_key(prefix, "request", request_id)


def dedup_key(prefix: str, key: str) -> str:
    return redis_key(prefix, "dedup", key)


class RedisConversationStore:
    """``ConversationStore`` in Redis: a list per thread, its TTL refreshed by every append.

    Only the newest ``max_turns`` turns of a thread are kept (the prompt keeps fewer anyway). Redis
    cannot hold an empty list, so appending no turns to an unseen thread leaves it unseen.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        ttl_seconds: float,
        max_turns: int = 200,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self._redis = redis
        self._ttl_ms = milliseconds(ttl_seconds)
        self._max_turns = max_turns
        self.prefix = prefix

    async def get_turns(self, *, team_id: str, channel: str, thread_ts: str) -> list[Turn] | None:
        key = conversation_key(self.prefix, team_id, channel, thread_ts)
        with unavailable_as(StoreUnavailable):
            items = await self._redis.lrange(key, 0, -1)
        if not items:  # a list key exists only while it has elements
            return None
        return [Turn.from_dict(json.loads(item)) for item in items]

    async def has_turns(self, *, team_id: str, channel: str, thread_ts: str) -> bool:
        key = conversation_key(self.prefix, team_id, channel, thread_ts)
        with unavailable_as(StoreUnavailable):
            return bool(await self._redis.exists(key))  # a list key exists only while it has elements

    async def append_turns(self, *, team_id: str, channel: str, thread_ts: str, turns: list[Turn]) -> None:
        key = conversation_key(self.prefix, team_id, channel, thread_ts)
        with unavailable_as(StoreUnavailable):
            async with self._redis.pipeline(transaction=True) as pipe:
                if turns:
                    pipe.rpush(key, *(json.dumps(turn.to_dict()) for turn in turns))
                    pipe.ltrim(key, -self._max_turns, -1)
                pipe.pexpire(key, self._ttl_ms)
                await pipe.execute()

    async def remember_request(self, *, request_id: str, data: dict[str, Any]) -> None:
        with unavailable_as(StoreUnavailable):
            await self._redis.set(request_key(self.prefix, request_id), json.dumps(data), px=self._ttl_ms)

    async def recall_request(self, *, request_id: str) -> dict[str, Any] | None:
        with unavailable_as(StoreUnavailable):
            raw = await self._redis.get(request_key(self.prefix, request_id))
        if raw is None:
            return None
        data: dict[str, Any] = json.loads(raw)
        return data


# KEYS: the delivery's keys; ARGV[1]: TTL in ms -> 1 first time (all set) | 0 seen (none set)
_FIRST_TIME = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, '1', 'PX', ARGV[1], 'NX')
end
return 1
"""


# KEYS: the claim; ARGV: value ('' only reads), ttl (ms) -> the value the key holds after the call
_CLAIM = """
if ARGV[1] ~= '' and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return ARGV[1] end
return redis.call('GET', KEYS[1]) or ''
"""


class RedisDeduplicator:
    """``Deduplicator`` in Redis: one key per delivery key, set together or not at all."""

    def __init__(self, redis: aioredis.Redis, *, ttl_seconds: float, prefix: str = DEFAULT_PREFIX) -> None:
        self._ttl_ms = milliseconds(ttl_seconds)
        self.prefix = prefix
        self._first_time = redis.register_script(_FIRST_TIME)
        self._claim = redis.register_script(_CLAIM)

    async def first_time(self, *, keys: list[str]) -> bool:
        if not keys:
            return True
        with unavailable_as(StoreUnavailable):
            fresh = await self._first_time(
                keys=[dedup_key(self.prefix, key) for key in dict.fromkeys(keys)], args=[self._ttl_ms]
            )
        return bool(fresh)

    async def claim(self, *, key: str, value: str) -> str:
        with unavailable_as(StoreUnavailable):
            held = await self._claim(
                keys=[dedup_key(self.prefix, f"claim:{key}")], args=[value, self._ttl_ms]
            )
        return held.decode() if isinstance(held, bytes) else str(held)
