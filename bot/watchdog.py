"""A watchdog for the Socket Mode connection: reconnect one that has gone silent.

slack_sdk's aiohttp Socket Mode client pings Slack every ``ping_interval`` seconds from a monitor task
and reconnects when pongs stop. When that monitor dies or hangs, or the connection stays open but
delivers nothing, the bot would sit deaf until it is restarted. The watchdog is independent of it: it
notes every message received (a listener on the client) and every pong (``last_ping_pong_time``), and
when neither came for ``silent_after`` seconds it forces a new connection
(``connect_to_new_endpoint(force=True)``). The Runtime sets ``ping_interval`` to a quarter of
``silent_after`` (``BOT_SOCKET_WATCHDOG_SECONDS``), so a healthy idle connection is never silent that
long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def ping_interval_for(silent_after: float) -> float:
    """slack_sdk's ping interval for a watchdog of ``silent_after`` seconds (Bolt's default is 10 s)."""
    return min(10.0, silent_after / 4)


class SocketWatchdog:
    def __init__(
        self,
        client: Any,
        *,
        silent_after: float,
        on_reconnect: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,  # slack_sdk's ping times are wall-clock times
    ) -> None:
        self._client = client
        self._silent_after = silent_after
        self._on_reconnect = on_reconnect
        self._clock = clock
        self._heard_at = clock()
        self._session: object | None = None
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0

    def start(self) -> None:
        listeners = getattr(self._client, "on_message_listeners", None)
        if isinstance(listeners, list):
            listeners.append(self._heard)
        self._session = getattr(self._client, "current_session", None)
        self._heard_at = self._clock()
        self._task = asyncio.create_task(self._run(), name="socket-watchdog")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _heard(self, message: Any) -> None:
        self._heard_at = self._clock()

    def silent_for(self) -> float:
        """Seconds since the connection last showed a sign of life."""
        session = getattr(self._client, "current_session", None)
        if session is not self._session:  # slack_sdk reconnected by itself: a fresh start
            self._session = session
            self._heard_at = self._clock()
        pong = getattr(self._client, "last_ping_pong_time", None) or 0.0
        return self._clock() - max(self._heard_at, float(pong))

    async def _run(self) -> None:
        interval = max(0.05, self._silent_after / 4)
        while True:
            await asyncio.sleep(interval)  # a periodic check: there is no event for "nothing happened"
            if getattr(self._client, "closed", False):
                return
            silent = self.silent_for()
            if silent < self._silent_after:
                continue
            logger.warning("Socket Mode connection silent for %.1fs; reconnecting", silent)
            self.reconnects += 1
            if self._on_reconnect is not None:
                self._on_reconnect("silent")
            self._heard_at = self._clock()
            try:
                await self._client.connect_to_new_endpoint(force=True)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                logger.error("Socket Mode reconnection failed (%s); will try again", type(err).__name__)
            self._session = getattr(self._client, "current_session", None)
            self._heard_at = self._clock()
