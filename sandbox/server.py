"""What every local stand-in server shares: ``async with`` starts and stops it, ``port`` once started."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class LocalServer:
    """Subclasses implement ``start``/``stop`` and set ``_port`` when they listen."""

    _port: int | None = None

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
