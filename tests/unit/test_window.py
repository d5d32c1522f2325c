"""The sliding log shared by the in-process limits and edit budgets."""

from __future__ import annotations

from collections import deque

from bot import window


def test_expire_drops_what_left_the_window_edge_included() -> None:
    log = deque([1.0, 2.0, 3.0])
    window.expire(log, now=12.0, window=10.0)
    assert list(log) == [3.0]


def test_room_at_is_when_enough_entries_have_left() -> None:
    log = deque([1.0, 2.0, 3.0])
    assert window.room_at(log, 3, now=5.0, window=10.0) == 5.0  # already at most 3
    assert window.room_at(log, 2, now=5.0, window=10.0) == 11.0  # the oldest leaves at 1 + 10
    assert window.room_at(log, 0, now=5.0, window=10.0) == 13.0  # all gone when the newest leaves
