"""The edit budget in Redis, so that every replica draws on one budget per workspace.

Keys (``P`` is the prefix, ``threadline:`` by default)::

    P edits:{team}    zset     one member per granted edit, scored by its time (ms, Redis' clock)
    P pause:{team}    string   exists while Slack's Retry-After holds the workspace (PX = the pause)

One Lua script takes a slot: it drops entries older than the window, answers "wait" while the pause
key lives, and adds an entry only if the count is under the priority's ceiling; otherwise it returns
the milliseconds until the entry that blocks this priority leaves the window, and ``acquire`` sleeps
exactly that long before trying again (no fixed-interval polling). Time comes from Redis (``TIME``),
so replicas with skewed clocks still share one window.

Priority across waiters is best-effort here (``MemoryEditBudget`` orders its waiters strictly): waiters
do not queue, whoever runs the script first when a slot frees gets it. What *is* guaranteed is the
ceilings and the room kept for live answers' finals (``P live:{team}``, a zset of answer ids scored
by an expiry, see ``bot.ratelimit.base.refuses_non_final``): progress and notices may fill only
half the window, and no non-final edit may push a live answer's final into a
later window, whatever the other replicas are doing.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import secrets

import redis.asyncio as aioredis

from bot.ratelimit.base import Priority, progress_interval
from bot.redis import KEY_PREFIX, LUA_NOW_MS, unavailable_as
from bot.redis import key as redis_key
from bot.store.base import StoreUnavailable

DEFAULT_PREFIX = KEY_PREFIX


def edits_key(prefix: str, team_id: str) -> str:
    return redis_key(prefix, "edits", team_id)


def pause_key(prefix: str, team_id: str) -> str:
    return redis_key(prefix, "pause", team_id)


def live_key(prefix: str, team_id: str) -> str:
    return redis_key(prefix, "live", team_id)


# A live answer that is never closed (its replica died) stops counting after this long.
LIVE_TTL_MS = 10 * 60 * 1000


# KEYS: edits, pause, live; ARGV: window (ms), ceiling, member, limit, final (1|0), answer id or ''
# -> 0 granted | ms to wait before trying again
_TAKE = (
    LUA_NOW_MS
    + """
local now = now_ms()
local window, ceiling, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return paused end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local refused = false
if ARGV[5] == '0' then
  -- keep room for the finals of live answers (see bot.ratelimit.base.refuses_non_final)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  local x = redis.call('ZCARD', KEYS[3]) - limit + n
  refused = x >= 0 and x % limit == 0
end
if n < ceiling and not refused then
  if ARGV[5] == '1' and ARGV[6] ~= '' then redis.call('ZREM', KEYS[3], ARGV[6]) end
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window) + 1)
  return 0
end
local index = 0
if n >= ceiling then index = n - ceiling end
local blocker = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
if blocker[2] == nil then return 1 end
return math.max(1, math.ceil(tonumber(blocker[2]) + window - now))
"""
)

# KEYS: live; ARGV: answer id, 1 (alive) | 0, ms to keep it -> 1
_LIVE = (
    LUA_NOW_MS
    + """
if ARGV[2] == '1' then
  redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
"""
)

# KEYS: edits, pause, live; ARGV: window (ms), limit, answer id, ms to keep it -> 1 kept | 0 no room
_RESERVE = (
    LUA_NOW_MS
    + """
local now = now_ms()
if redis.call('PTTL', KEYS[2]) > 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local kept = redis.call('ZCARD', KEYS[3])
if redis.call('ZSCORE', KEYS[3], ARGV[3]) == false then kept = kept + 1 end
if redis.call('ZCARD', KEYS[1]) + kept > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[4]))
return 1
"""
)

# KEYS: live -> how many answers are live now
_LIVE_COUNT = (
    LUA_NOW_MS
    + """
return redis.call('ZCOUNT', KEYS[1], now_ms(), '+inf')
"""
)

# KEYS: pause; ARGV: ms -> the pause lasts max(what is left of it, ms)
_PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""


class RedisEditBudget:
    """``EditBudget`` in Redis, with the same ceilings per priority as ``MemoryEditBudget``."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        limit: int,
        window: float = 60.0,
        reserve_fraction: float = 0.2,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self.prefix = prefix
        self._window_ms = window * 1000
        reserve = min(limit - 1, math.ceil(limit * reserve_fraction))
        self._ceiling = {
            Priority.FINAL: limit,
            Priority.FIRST_WORDS: limit,
            Priority.PROGRESS: min(limit - reserve, max(1, limit // 2)),
            Priority.NOTICE: min(limit - reserve, max(1, limit // 2)),
        }
        self._take = redis.register_script(_TAKE)
        self._pause = redis.register_script(_PAUSE)
        self._live = redis.register_script(_LIVE)
        self._reserve = redis.register_script(_RESERVE)
        self._live_count = redis.register_script(_LIVE_COUNT)
        self._token = secrets.token_hex(6)  # members must be unique across replicas
        self._seq = itertools.count()

    async def acquire(self, *, team_id: str, priority: Priority, answer_id: str | None = None) -> None:
        keys = [
            edits_key(self.prefix, team_id),
            pause_key(self.prefix, team_id),
            live_key(self.prefix, team_id),
        ]
        member = f"{self._token}:{next(self._seq)}"
        final = "1" if priority is Priority.FINAL else "0"
        args: list[str | float] = [
            self._window_ms,
            self._ceiling[priority],
            member,
            self.limit,
            final,
            answer_id or "",
        ]
        while True:
            with unavailable_as(StoreUnavailable):
                wait_ms = int(await self._take(keys=keys, args=args))
            if wait_ms <= 0:
                return
            await asyncio.sleep(wait_ms / 1000)  # until the blocking entry leaves the window

    async def try_reserve(self, *, team_id: str, answer_id: str) -> bool:
        keys = [
            edits_key(self.prefix, team_id),
            pause_key(self.prefix, team_id),
            live_key(self.prefix, team_id),
        ]
        with unavailable_as(StoreUnavailable):
            kept = await self._reserve(keys=keys, args=[self._window_ms, self.limit, answer_id, LIVE_TTL_MS])
        return bool(int(kept))

    async def progress_interval(self, *, team_id: str) -> float:
        with unavailable_as(StoreUnavailable):
            live = int(await self._live_count(keys=[live_key(self.prefix, team_id)]))
        return progress_interval(window=self.window, live=live, ceiling=self._ceiling[Priority.PROGRESS])

    async def live(self, *, team_id: str, answer_id: str, alive: bool) -> None:
        with unavailable_as(StoreUnavailable):
            await self._live(keys=[live_key(self.prefix, team_id)], args=[answer_id, int(alive), LIVE_TTL_MS])

    async def pause(self, *, team_id: str, seconds: float) -> None:
        ms = math.ceil(seconds * 1000)
        if ms <= 0:
            return
        with unavailable_as(StoreUnavailable):
            await self._pause(keys=[pause_key(self.prefix, team_id)], args=[ms])
