"""Signals between replicas: a Stop pressed on one replica must reach the replica streaming the answer.

In memory (one process) a signal is delivered to the local handler; with Redis it is published on a
channel every replica subscribes to. Delivery is best effort: a Stop whose replica is gone finds
nothing to stop (the answer is then resumed by another replica and can be stopped there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis

from bot.redis import KEY_PREFIX
from bot.redis import key as redis_key
from bot.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

StopHandler = Callable[[str, str, str], Awaitable[None]]  # request_id, user, channel


class Signals(Protocol):
    async def publish_stop(self, *, request_id: str, user: str, channel: str) -> None: ...

    async def start(self, *, on_stop: StopHandler) -> None: ...

    async def close(self) -> None: ...


class MemorySignals:
    def __init__(self) -> None:
        self._on_stop: StopHandler | None = None

    async def start(self, *, on_stop: StopHandler) -> None:
        self._on_stop = on_stop

    async def publish_stop(self, *, request_id: str, user: str, channel: str) -> None:
        if self._on_stop is not None:
            await self._on_stop(request_id, user, channel)

    async def close(self) -> None:
        self._on_stop = None


class RedisSignals:
    def __init__(self, redis: aioredis.Redis, *, prefix: str = KEY_PREFIX) -> None:
        self._redis = redis
        self._channel = redis_key(prefix, "signals")
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self, *, on_stop: StopHandler) -> None:
        self._task = asyncio.create_task(self._listen(on_stop), name="signals")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5.0)

    async def _listen(self, on_stop: StopHandler) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data: dict[str, Any] = json.loads(message["data"])
                    if data.get("kind") == "stop":
                        await on_stop(str(data["request_id"]), str(data["user"]), str(data["channel"]))
            except asyncio.CancelledError:
                raise
            except Exception as err:  # Redis restarted: subscribe again after a pause
                logger.warning("signal subscription lost (%s); resubscribing", type(err).__name__)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def publish_stop(self, *, request_id: str, user: str, channel: str) -> None:
        payload = json.dumps({"kind": "stop", "request_id": request_id, "user": user, "channel": channel})
        await self._redis.publish(self._channel, payload)

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
