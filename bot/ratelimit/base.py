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
    async def acquire(self, *, team_id: str, priority: Priority, answer_id: str | None = None) -> None:
        """Wait until one edit may be sent now, and count it. A final edit of a live answer
        (``answer_id``) stops that answer counting as live from the moment it is granted."""
        ...

    async def pause(self, *, team_id: str, seconds: float) -> None:
        """Slack answered 429 with Retry-After: hold every edit of the workspace for ``seconds``."""
        ...

    async def live(self, *, team_id: str, answer_id: str, alive: bool) -> None:
        """An answer starts (``alive``) or stops needing a final edit. The budget keeps room for the
        finals of live answers: a non-final edit is refused when it would push some final into a
        later window (with L live answers and B edits a window, finals need ceil(L/B) windows, which
        leave B * ceil(L/B) - L slots for everything else)."""
        ...

    async def try_reserve(self, *, team_id: str, answer_id: str) -> bool:
        """Without waiting: keep one call of the window for ``answer_id`` if the calls sent in it
        plus those kept already leave room (and no pause holds the workspace). The call is then sure
        to fit when it is made: its ``acquire`` (final, with this ``answer_id``) takes the kept
        room; ``live(alive=False)`` gives it back unused. Used where a call must not wait later (a
        native stream's start and stop are reserved before the stream is chosen)."""
        ...

    async def progress_interval(self, *, team_id: str) -> float:
        """How far apart one answer's progress edits should be so that the progress share of the
        window, spread evenly over the workspace's live answers, is never spent early and never
        runs dry: ``window * live / progress_ceiling`` (a lone answer on Slack's 45 a minute: one
        every 2.7 s, for the whole minute)."""
        ...


def progress_interval(*, window: float, live: int, ceiling: int) -> float:
    return window * max(1, live) / max(1, ceiling)


def refuses_non_final(*, used: int, live: int, limit: int) -> bool:
    """True when one more non-final edit now would delay some live answer's final by a window.

    With ``free`` slots left in this window, the finals need ``max(0, ceil((live - free) / limit))``
    more windows; a grant changes that number exactly when ``x = live - limit + used`` is a
    non-negative multiple of ``limit``."""
    x = live - limit + used
    return x >= 0 and x % limit == 0
