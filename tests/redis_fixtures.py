"""Fixtures for tests that need Redis. Import them into a test module:

    from tests.redis_fixtures import redis_client, redis_server  # noqa: F401

``redis_server`` is one real ``redis-server`` for the whole session; ``redis_client`` is a fresh
client per test (made by ``bot.redis.connect``, as the bot makes it) on an emptied database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from bot.redis import connect
from tests.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    redis_server.start()  # a test that stopped it may have failed before starting it again
    client = connect(redis_server.url, socket_timeout=2.0, connect_timeout=1.0, retries=2)
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()
