"""What every local stand-in server shares: ``async with`` starts and stops it, ``port`` once started,
and ``wait_for`` a condition, re-checked whenever the server reports a change (no polling)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Self


class LocalServer:
    """Subclasses implement ``start``/``stop``, set ``_port`` when they listen, call ``_changed()``
    after anything a test may wait for, and ``describe()`` their state for a timeout's message."""

    _port: int | None = None
    _change: asyncio.Event

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    def describe(self) -> str:
        return ""

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` is true; re-checked each time the server reports a change."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            change = self._change
            if predicate():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(change.wait(), remaining)
        name = type(self).__name__
        raise TimeoutError(f"{name}.wait_for: condition still false after {timeout}s.\n{self.describe()}")

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port
