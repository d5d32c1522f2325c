"""The one place that opens a Redis connection (used when ``REDIS_URL`` is set).

Every backend (``queue/redis.py``, ``store/redis.py``, ``ratelimit/redis.py``) takes the client this
returns. It decodes replies to ``str``, bounds every socket operation with a timeout (so a dead
Redis fails a call in seconds instead of hanging it), checks idle connections before reuse, and
retries a failed call on a fresh connection with exponential backoff (0.2 s, 0.4 s, 0.8 s, ... capped
at 5 s). Callers translate what still fails into ``QueueUnavailable``/``StoreUnavailable``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.errors import ThreadlineError

KEY_PREFIX = "threadline:"
"""What every Threadline key starts with, unless a backend is given another ``prefix``."""


def key(prefix: str, kind: str, *parts: str) -> str:
    """The one way a Redis key is named: ``{prefix}{kind}``, then ``:{part}`` for each part
    (``key("threadline:", "conv", team, channel, ts)`` → ``threadline:conv:T1:C1:1.2``). docs/redis.md
    lists every kind."""
    return prefix + ":".join((kind, *parts))


LUA_NOW_MS = """
local function now_ms()  -- Redis' clock (TIME), in milliseconds to the microsecond
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
"""
"""The one way the Lua scripts read the time: prepend it, call ``now_ms()`` (``math.floor`` of it
where whole milliseconds are stored). Redis' clock, so replicas with skewed clocks agree."""


# Blocking reads (BLPOP in the queue) must stay under the socket timeout: see RedisQueue.claim.
DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_RETRIES = 3
DEFAULT_HEALTH_CHECK_INTERVAL = 15
DEFAULT_MAX_CONNECTIONS = 200


def connect(
    url: str,
    *,
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    health_check_interval: int = DEFAULT_HEALTH_CHECK_INTERVAL,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> aioredis.Redis:
    """A client for ``url`` (``redis://``, ``rediss://`` or ``unix://``). Connects lazily.

    The pool *blocks* when all its connections are busy (for up to ``socket_timeout``) instead of
    failing at once: a burst of hundreds of requests waits a moment for a connection rather than
    being told the queue is unavailable."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=socket_timeout,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=health_check_interval,
        retry=Retry(ExponentialBackoff(cap=5.0, base=0.1), retries=retries),
    )
    return aioredis.Redis.from_pool(pool)


async def ping(redis: aioredis.Redis) -> bool:
    """True if Redis answers; False (never an exception) if it cannot be reached."""
    try:
        return bool(await redis.ping())
    except (RedisError, OSError):
        return False


@contextlib.contextmanager
def unavailable_as(error: type[ThreadlineError]) -> Iterator[None]:
    """Redis unreachable (after the client's own retries) -> ``error`` (the seam's own exception)."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise error(f"redis: {type(exc).__name__}") from exc


def milliseconds(seconds: float) -> int:
    """A positive whole number of milliseconds (for PX/PEXPIRE arguments)."""
    return max(1, math.ceil(seconds * 1000))
