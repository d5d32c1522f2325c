"""Split a rendered answer (Slack mrkdwn) over several messages, and join the pieces back.

Pure: no I/O, stdlib only. ``join_pieces(split_message(t)) == t`` for every ``t``.

Cutting (greedy)
----------------
Each piece is the longest prefix of the remaining text that fits in ``limit`` characters (fence
markers included), cut at the best boundary of the *window* (the characters that could fit):

1. right after a paragraph break ``\\n\\n`` in the last half of the window, else
2. right after a line break ``\\n`` in the last half, else
3. right after a space in the last half, outside code blocks (a code line is never cut at a
   space: the reader could not tell the two halves are one line), else
4. right after a line break anywhere in the window, else
5. right after a space in the last half (a code line with no line break in the window), else
6. a hard cut at the last allowed position of the window.

Tiers 1-3 only look at the last half of the window, so pieces are at least half full (a text
needs at most about twice the minimum number of messages, and no piece is tiny). Tier 4 only
applies when the last half has no usable boundary (a long code line, a very long word or URL):
then a shorter piece is better than cutting through a code line or a word.

A cut is *allowed* when it is not inside an entity (``&amp;``, ``&lt;``, ``&gt;``; checked
conservatively: never right after ``&``, ``&a``, ``&am``, ``&amp``, ``&l``, ``&lt``, ``&g``,
``&gt``), not inside a ``<...>`` link (an unclosed ``<`` on the same line) and not right before a
backtick unless at the start of a line (so a piece never starts with ````````` in the middle of a
line, and a backtick run is never cut). If no position of the window is allowed, the link rule is
dropped, then the backtick rule (this needs a window full of backticks); an entity is never cut.

Fences
------
A *fence line* is a line that starts with ```````; a fence toggles the code state once its three
backticks are in the text. When a cut falls inside a code block, the piece gets ``"\\n```"``
appended and the next piece starts with ``"```\\n"``, so every piece renders on its own (pieces
are fence-balanced, except the last one if the whole text ends inside a code block).
No marker is recorded in-band: ``join_pieces`` re-derives the code state from the text it has
rebuilt so far, strips ``"```\\n"`` from a piece that starts inside a code block, and strips a
trailing ``"\\n```"`` when the text is inside a code block right before it *and* the next piece
starts with ``"```\\n"``. That is unambiguous: without a marker, the original text would have
``````` right before the cut and ````` right after it, a cut inside a backtick run, which the
backtick rule forbids (and the fallback never needs: the line start three characters earlier is
always allowed).

Prefix stability
----------------
Every decision for a piece that is not the last one reads only the characters up to and including
the window end ``W`` (the text is longer than ``W`` there, else it would be the last piece), and
only backwards from a candidate cut except for the one character at the cut. So if ``t`` splits
into k >= 2 pieces, ``t + s`` starts with the same k - 1 pieces.
"""

from __future__ import annotations

import bisect
import re

__all__ = ["MESSAGE_LIMIT", "MIN_LIMIT", "join_pieces", "split_message"]

MESSAGE_LIMIT = 3900
MIN_LIMIT = 16  # room for both fence markers (8) and a few characters that are not an entity

OPEN_MARKER = "```\n"
CLOSE_MARKER = "\n```"
_MARK = len(OPEN_MARKER)
_FENCE_LINE = re.compile(r"^```", re.MULTILINE)
_ENTITY_PREFIXES = frozenset({"&", "&a", "&am", "&amp", "&l", "&lt", "&g", "&gt"})
_ENTITIES = ("&amp;", "&lt;", "&gt;")


def split_message(text: str, *, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters (see the module docstring)."""
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT}, got {limit}")
    n = len(text)
    # a fence line starting at p toggles the state for every cut c >= p + 3
    toggles = [m.start() + 3 for m in _FENCE_LINE.finditer(text)]
    pieces: list[str] = []
    start = 0
    opened = False  # inside a code block at `start`
    while True:
        pre = _MARK if opened else 0
        if pre + n - start <= limit:
            pieces.append((OPEN_MARKER if opened else "") + text[start:])
            return pieces
        cut = _Cutter(text, start, start + limit - pre, toggles).cut()
        closed = bisect.bisect_right(toggles, cut) % 2 == 0
        piece = text[start:cut]
        pieces.append((OPEN_MARKER if opened else "") + piece + ("" if closed else CLOSE_MARKER))
        start = cut
        opened = not closed


class _Cutter:
    """Chooses the cut for one piece: ``start < cut <= end`` where ``end`` is the window end."""

    def __init__(self, text: str, start: int, end: int, toggles: list[int]) -> None:
        self.text = text
        self.start = start
        self.end = end  # text[end] exists: the rest of the text did not fit
        self.toggles = toggles
        self.half = start + (end - start) // 2

    def fits(self, c: int) -> bool:
        opened = bisect.bisect_right(self.toggles, c) % 2 == 1
        return c + (len(CLOSE_MARKER) if opened else 0) <= self.end

    def entity_ok(self, c: int) -> bool:
        amp = self.text.rfind("&", max(self.start, c - 4), c)
        return amp < 0 or self.text[amp:c] not in _ENTITY_PREFIXES

    def backtick_ok(self, c: int) -> bool:
        return self.text[c] != "`" or self.text[c - 1] == "\n"

    def link_start(self, c: int) -> int:
        """The start of the ``<...>`` link that ``c`` would cut, or -1."""
        text = self.text
        lt = text.rfind("<", self.start, c)
        if lt < 0 or text.find(">", lt, c) >= 0 or text.find("\n", lt, c) >= 0:
            return -1
        return lt

    def code_ok(self, c: int) -> bool:
        """Inside a code block, don't cut before its first line or right before its closing fence."""
        k = bisect.bisect_right(self.toggles, c)
        if k % 2 == 0:
            return True
        text = self.text
        if text[c - 1] == "\n" and text.startswith("```", c):  # c + 3 <= end: fits() holds
            return False
        nl = text.find("\n", self.toggles[k - 1], c)
        return nl >= 0 and not text[nl:c].isspace()

    def ok(self, c: int) -> bool:
        return (
            self.fits(c)
            and self.entity_ok(c)
            and self.backtick_ok(c)
            and self.link_start(c) < 0
            and self.code_ok(c)
        )

    def after(self, sep: str, lo: int, *, in_code: bool = True) -> int | None:
        """The last allowed cut right after ``sep`` with ``lo <= cut <= end``.

        ``in_code=False`` skips cuts inside a code block (a space there would cut a code line).
        """
        lo = max(self.start, lo - len(sep))
        hi = self.end
        while True:
            j = self.text.rfind(sep, lo, hi)
            if j < 0:
                return None
            c = j + len(sep)
            k = bisect.bisect_right(self.toggles, c)
            if not in_code and k % 2 == 1:
                hi = min(j + len(sep) - 1, self.toggles[k - 1] - 3)  # jump before the fence line
                continue
            if self.ok(c):
                return c
            link = self.link_start(c)  # skip the whole link, not each space of its label
            hi = j + len(sep) - 1 if link < 0 else min(j + len(sep) - 1, link)

    def hard(self) -> int | None:
        c = self.end
        while c > self.start:
            if self.ok(c):
                return c
            link = self.link_start(c)
            if link == self.start:
                return None  # the window is one link: no cut outside it
            c = link if link > self.start else c - 1
        return None

    def fallback(self) -> int:
        for c in range(self.end, self.start, -1):  # drop the link and code-block rules
            if self.fits(c) and self.entity_ok(c) and self.backtick_ok(c):
                return c
        for c in range(self.end, self.start, -1):  # drop the backtick rule
            if self.fits(c) and self.entity_ok(c):
                return c
        # Only conservative entity checks failed (text like "&l&l&l"): check real entities,
        # which needs up to 3 characters after the cut, so stay 3 before the window end.
        for c in range(self.end - 3, self.start, -1):
            if self.fits(c) and not any(
                self.text.startswith(e, p) and p + len(e) > c
                for p in range(max(self.start, c - 4), c)
                for e in _ENTITIES
            ):
                return c
        raise AssertionError("unreachable: limit >= MIN_LIMIT leaves an allowed cut")  # pragma: no cover

    def cut(self) -> int:
        c = (
            self.after("\n\n", self.half)
            or self.after("\n", self.half)
            or self.after(" ", self.half, in_code=False)
            or self.after("\n", self.start + 1)
            or self.after(" ", self.half)
            or self.hard()
        )
        return c if c is not None else self.fallback()


def _toggles_in(tail: str, body: str) -> int:
    """Fence toggles in ``body``, given the last (up to) 3 characters before it."""
    joined = tail + body
    return sum(1 for m in _FENCE_LINE.finditer(joined) if m.start() + 3 > len(tail))


def join_pieces(pieces: list[str]) -> str:
    """The text ``split_message`` split into ``pieces``: the fence markers it added are removed."""
    return "".join(_bodies(pieces))


def _bodies(pieces: list[str]) -> list[str]:
    """Each piece without the fence markers ``split_message`` added: the original slices."""
    bodies: list[str] = []
    tail = ""  # the last 3 characters rebuilt so far
    opened = False  # inside a code block at the start of the piece
    for i, piece in enumerate(pieces):
        body = piece
        if opened and body.startswith(OPEN_MARKER):
            body = body[_MARK:]
        if (
            i + 1 < len(pieces)
            and body.endswith(CLOSE_MARKER)
            and pieces[i + 1].startswith(OPEN_MARKER)
            and opened ^ (_toggles_in(tail, body[: -len(CLOSE_MARKER)]) % 2 == 1)
        ):
            body = body[: -len(CLOSE_MARKER)]
        opened ^= _toggles_in(tail, body) % 2 == 1
        bodies.append(body)
        tail = (tail + body)[-3:]
    return bodies
