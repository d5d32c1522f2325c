"""The one place that opens a Redis connection (used when ``REDIS_URL`` is set).

Every backend (``queue/redis.py``, ``store/redis.py``, ``ratelimit/redis.py``) takes the client this
returns. It decodes replies to ``str``, bounds every socket operation with a timeout (so a dead
Redis fails a call in seconds instead of hanging it), checks idle connections before reuse, and
retries a failed call on a fresh connection with exponential backoff (0.2 s, 0.4 s, 0.8 s, ... capped
at 5 s). Callers translate what still fails into ``QueueUnavailable``/``StoreUnavailable``.

``setup_problems`` checks a server against docs/redis.md's requirements (for ``bot check``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

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


MIN_VERSION = (6, 2)


def setup_problems(info: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(problems, notes) of a Redis server against docs/redis.md's requirements, from its ``INFO``
    (sections server, persistence, memory, cluster): 6.2 or newer, AOF on, no eviction of keys
    without a TTL, one primary (not a cluster). A field INFO did not report is a problem too: a
    check that cannot tell must not pass."""
    problems: list[str] = []
    notes: list[str] = []
    version = str(info.get("redis_version", ""))
    try:
        numbers = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        numbers = ()
    if len(numbers) < 2:
        problems.append(
            f"cannot tell the Redis version (INFO says {version or 'nothing'!r}): 6.2 or newer is needed"
        )
    elif numbers < MIN_VERSION:
        problems.append(
            f"Redis {version} is older than 6.2 (the queue's scripts need LPOS and fractional BLPOP "
            "timeouts): upgrade it"
        )
    aof = info.get("aof_enabled")
    if aof is None:
        problems.append("cannot tell whether AOF is on: set appendonly yes (appendfsync everysec)")
    elif str(aof) != "1":
        problems.append(
            "appendonly is off: a Redis restart loses the queue, its leases and the conversations; "
            "set appendonly yes (appendfsync everysec)"
        )
    policy = str(info.get("maxmemory_policy", ""))
    if not policy:
        problems.append("cannot tell the maxmemory-policy: set noeviction")
    elif policy.startswith("allkeys-"):
        problems.append(
            f"maxmemory-policy is {policy}: when memory runs out Redis evicts queued questions; "
            "set noeviction"
        )
    elif policy != "noeviction":
        notes.append(f"{policy} may evict conversations and dedup marks when memory runs out")
    cluster = info.get("cluster_enabled")
    if cluster is None:
        problems.append("cannot tell whether Redis runs as a cluster: one primary is needed")
    elif str(cluster) == "1":
        problems.append(
            "Redis Cluster: the queue's scripts need every key on one node; use one primary "
            "(replicas are fine)"
        )
    return problems, notes


async def server_info(redis: aioredis.Redis) -> dict[str, Any]:
    """The INFO sections ``setup_problems`` reads, merged."""
    merged: dict[str, Any] = {}
    for section in ("server", "persistence", "memory", "cluster"):
        merged.update(await redis.info(section))
    return merged


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
