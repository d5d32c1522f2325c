"""The edit-budget seam.

Slack allows about 50 ``chat.update`` calls a minute per workspace (Tier 3), shared by every message
the app edits. The budget grants at most ``limit`` edits in any window of ``window`` seconds (a
sliding log, the strictest reading of "N a minute"), highest priority first.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol


class Priority(IntEnum):
    """Lower value = served first. A final text must never wait behind progress edits."""

    FINAL = 0
    FIRST_WORDS = 1
    PROGRESS = 2
    NOTICE = 3


class EditBudget(Protocol):
    async def acquire(self, *, team_id: str, priority: Priority) -> None:
        """Wait until one edit may be sent now, and count it."""
        ...

    async def pause(self, *, team_id: str, seconds: float) -> None:
        """Slack answered 429 with Retry-After: hold every edit of the workspace for ``seconds``."""
        ...
