"""The sliding log the in-process backends count with (limits, edit budgets): a deque of event times,
oldest first, of which only those of the last ``window`` seconds count."""

from __future__ import annotations

from collections import deque


def expire(log: deque[float], now: float, window: float) -> None:
    """Drop the events that have left the window (those at or before ``now - window``)."""
    while log and log[0] <= now - window:
        log.popleft()


def room_at(log: deque[float], keep: int, now: float, window: float) -> float:
    """When the window will hold at most ``keep`` of the log's events (``now`` if it already does)."""
    index = len(log) - keep - 1
    return log[index] + window if index >= 0 else now
