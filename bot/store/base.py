"""The storage seams. Implementations: ``memory`` (one process) and ``redis`` (replicas share it)."""

from __future__ import annotations

from typing import Protocol

from bot.context import Turn


class ConversationStore(Protocol):
    """The turns of each thread, kept for a TTL so context does not depend on Slack's history API."""

    async def get_turns(self, *, team_id: str, channel: str, thread_ts: str) -> list[Turn] | None:
        """The thread's turns, oldest first; ``None`` if the store has never seen the thread."""
        ...

    async def append_turns(self, *, team_id: str, channel: str, thread_ts: str, turns: list[Turn]) -> None:
        """Add turns at the end of the thread's conversation (creating it) and refresh its TTL."""
        ...


class Deduplicator(Protocol):
    """Remembers deliveries so a retried or doubled event is answered once."""

    async def first_time(self, *, keys: list[str]) -> bool:
        """True if none of ``keys`` was seen before (and remember them all); False for a repeat."""
        ...
