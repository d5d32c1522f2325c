"""The storage seams. Implementations: ``memory`` (one process) and ``redis`` (replicas share it)."""

from __future__ import annotations

from typing import Any, Protocol

from bot.context import Turn
from bot.errors import ThreadlineError


class StoreUnavailable(ThreadlineError):
    """The store's backend cannot be reached (Redis down)."""


class ConversationStore(Protocol):
    """The turns of each thread, kept for a TTL so context does not depend on Slack's history API."""

    async def get_turns(self, *, team_id: str, channel: str, thread_ts: str) -> list[Turn] | None:
        """The thread's turns, oldest first; ``None`` if the store has never seen the thread."""
        ...

    async def has_turns(self, *, team_id: str, channel: str, thread_ts: str) -> bool:
        """Whether the store knows the thread (``get_turns`` would not be ``None``), without reading it."""
        ...

    async def append_turns(self, *, team_id: str, channel: str, thread_ts: str, turns: list[Turn]) -> None:
        """Add turns at the end of the thread's conversation (creating it) and refresh its TTL."""
        ...

    async def remember_request(self, *, request_id: str, data: dict[str, Any]) -> None:
        """Keep a request (for its Retry button) for the store's TTL."""
        ...

    async def recall_request(self, *, request_id: str) -> dict[str, Any] | None:
        """A request kept by ``remember_request``; ``None`` if unknown or expired."""
        ...


class Deduplicator(Protocol):
    """Remembers deliveries so a retried or doubled event is answered once."""

    async def first_time(self, *, keys: list[str]) -> bool:
        """True if none of ``keys`` was seen before (and remember them all); False for a repeat."""
        ...

    async def claim(self, *, key: str, value: str) -> str:
        """Set ``key`` to ``value`` unless it holds a value already (for the dedup TTL); returns the
        value it holds now: ``value`` when this caller won; ``""`` when unset. An empty ``value``
        only reads. Used to agree across replicas on one
        message (a placeholder posted twice in a race: the loser deletes its own)."""
        ...
