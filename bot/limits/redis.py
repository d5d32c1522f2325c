"""Limits in Redis, shared by every replica.

Keys (``P`` is the prefix, ``threadline:`` by default)::

    P limit:{key}                   zset     sliding log: one member per counted event, scored by
                                             Redis' clock (ms); PEXPIRE = the window
    P usage:{key}                   string   a counter (INCRBY), its TTL set when it is created
    P answer:{team}:{channel}:{ts}  string   the request id a bot message answers; TTL
    P vote:{key}                    set      the reactions that cast one user's vote of one kind on one
                                             answer; TTL (the answer's), renewed by each reaction

``take`` is one Lua script (drop entries older than the window, count, add if under the limit, else
answer the milliseconds until the blocking entry leaves the window), so replicas cannot both take the
last slot. ``add_usage`` is INCRBY, then PEXPIRE only when the counter is new (``NX``-style in Lua), so
a busy day's counter still expires. A vote is SADD/SCARD (SREM/SCARD) in one MULTI, so two replicas
handling two reactions of one vote count it once.
"""

from __future__ import annotations

import itertools
import secrets

import redis.asyncio as aioredis

from bot.redis import KEY_PREFIX, LUA_NOW_MS, milliseconds, unavailable_as
from bot.redis import key as redis_key
from bot.store.base import StoreUnavailable

DEFAULT_PREFIX = KEY_PREFIX

# KEYS: log; ARGV: window (ms), limit, member -> 0 counted | ms until an event would be allowed
_TAKE = (
    LUA_NOW_MS
    + """
local now = math.floor(now_ms())
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window))
  return 0
end
local blocker = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return math.max(1, math.ceil(tonumber(blocker[2]) + window - now))
"""
)

# KEYS: counter; ARGV: amount, ttl (ms) -> the new total
_ADD = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return total
"""


class RedisLimitStore:
    def __init__(self, redis: aioredis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._redis = redis
        self._prefix = prefix
        self._take = redis.register_script(_TAKE)
        self._add = redis.register_script(_ADD)
        self._token = secrets.token_hex(6)  # log members must be unique across replicas
        self._seq = itertools.count()

    async def take(self, *, key: str, limit: int, window: float) -> float:
        member = f"{self._token}:{next(self._seq)}"
        with unavailable_as(StoreUnavailable):
            wait_ms = int(
                await self._take(
                    keys=[redis_key(self._prefix, "limit", key)], args=[milliseconds(window), limit, member]
                )
            )
        return wait_ms / 1000

    async def add_usage(self, *, key: str, amount: int, ttl: float) -> int:
        with unavailable_as(StoreUnavailable):
            return int(
                await self._add(
                    keys=[redis_key(self._prefix, "usage", key)], args=[int(amount), milliseconds(ttl)]
                )
            )

    async def usage(self, *, key: str) -> int:
        with unavailable_as(StoreUnavailable):
            value = await self._redis.get(redis_key(self._prefix, "usage", key))
        return int(value) if value is not None else 0

    def _answer_key(self, team_id: str, channel: str, ts: str) -> str:
        return redis_key(self._prefix, "answer", team_id, channel, ts)

    async def remember_answer(
        self, *, team_id: str, channel: str, ts: str, request_id: str, ttl: float
    ) -> None:
        with unavailable_as(StoreUnavailable):
            await self._redis.set(self._answer_key(team_id, channel, ts), request_id, px=milliseconds(ttl))

    async def answer_request(self, *, team_id: str, channel: str, ts: str) -> str | None:
        with unavailable_as(StoreUnavailable):
            value = await self._redis.get(self._answer_key(team_id, channel, ts))
        return str(value) if value is not None else None

    async def add_vote(self, *, key: str, member: str, ttl: float) -> bool:
        name = redis_key(self._prefix, "vote", key)
        with unavailable_as(StoreUnavailable):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(name, member)
                pipe.scard(name)
                pipe.pexpire(name, milliseconds(ttl))
                added, size, _ = await pipe.execute()
        return int(added) == 1 and int(size) == 1

    async def remove_vote(self, *, key: str, member: str) -> bool:
        name = redis_key(self._prefix, "vote", key)
        with unavailable_as(StoreUnavailable):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.srem(name, member)
                pipe.scard(name)
                removed, size = await pipe.execute()
        return int(removed) == 1 and int(size) == 0

    async def close(self) -> None:
        return None
