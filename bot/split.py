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

A cut is *allowed* when it is

- not inside an entity (``&amp;``, ``&lt;``, ``&gt;``; checked conservatively, looking back only:
  never right after ``&``, ``&a``, ``&am``, ``&amp``, ``&l``, ``&lt``, ``&g`` or ``&gt``);
- not inside a ``<...>`` link (an unclosed ``<`` earlier on the same line in this piece);
- not right before a backtick, unless at the start of a line: a backtick run is never cut, and a
  piece never starts with three backticks that were not at the start of a line;
- inside a code block, not right before its closing fence and not before the block has content
  in this piece (either would leave an empty code block).

If no position of the window is allowed, the link and code-block rules are dropped, then the
backtick rule (only a window full of backticks or entity-like ``&`` runs gets there), then the
entity check becomes exact; an entity is never cut, and neither is the seam described below.

Fences
------
A *fence line* is a line that starts with three backticks (the renderer's fences are exactly
that, and it never lets three backticks appear anywhere else). A fence toggles the code state
once its three backticks are in the text. When a cut falls inside a code block, the piece gets
``CLOSE_MARKER = "\\n```"`` appended and the next piece starts with ``OPEN_MARKER = "```\\n"``,
so each piece renders on its own: every piece is fence-balanced, except the last one when the
whole text ends inside a code block (``render.to_mrkdwn`` never does).

Nothing is recorded in-band: ``join_pieces`` re-derives the code state from the text it has
rebuilt so far. It strips ``OPEN_MARKER`` from a piece that starts inside a code block, and strips
a trailing ``CLOSE_MARKER`` when the text is inside a code block right before it *and* the next
piece starts with ``OPEN_MARKER``. Without an added marker, that would mean the original text had
a fence line ending at the cut (``"\\n```"`` before it) and three more backticks right after it:
a cut between two backticks right after a fence line. No cut is ever made there (a rule that no
fallback drops; a window always has other cuts).

Prefix stability
----------------
Every decision for a piece that is not the last one reads only characters up to and including the
window end ``W`` (the text is longer than ``W`` there, else it would be the last piece): the rules
look back from a candidate cut, plus at most 3 characters after it that are still inside the
window (the cut's own character; a closing fence right after a cut inside code, where the cut is
at most ``W - 4``; real entities in the last fallback, which stops at ``W - 3``). So if ``t``
splits into k >= 2 pieces, ``t + s`` starts with the same k - 1 pieces.
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
_NON_SPACE = re.compile(r"\S")


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

    def seam_ok(self, c: int) -> bool:
        """Not right after a fence line (``"\\n```"``) with a backtick next: ``join_pieces`` could
        not tell that from an added ``CLOSE_MARKER``. Implied by ``backtick_ok``; never dropped."""
        return self.text[c] != "`" or self.text[c - 4 : c] != "\n```"

    def link_start(self, c: int) -> int:
        """The start of the ``<...>`` link that ``c`` would cut, or -1."""
        text = self.text
        lt = text.rfind("<", self.start, c)
        if lt < 0 or text.find(">", lt, c) >= 0 or text.find("\n", lt, c) >= 0:
            return -1
        return lt

    def code_skip(self, c: int) -> int:
        """-1 if ``c`` is a fine cut for code, else the largest cut worth trying instead.

        Inside a code block, don't cut right before its closing fence (the next piece would be an
        empty block) nor before this piece has any of the block's content (this piece would end
        with an empty block): then no cut between the fence line and ``c`` is better, so jump
        to the start of the fence line.
        """
        k = bisect.bisect_right(self.toggles, c)
        if k % 2 == 0:
            return -1
        text = self.text
        if text[c - 1] == "\n" and text.startswith("```", c):  # c + 3 <= end since fits(c)
            return c - 1
        toggle = self.toggles[k - 1]
        nl = text.find("\n", toggle, c)
        if nl < 0 or _NON_SPACE.search(text, max(nl, self.start), c) is None:
            return toggle - 3
        return -1

    def next_candidate(self, c: int) -> int:
        """``c`` if it is an allowed cut, else the largest smaller cut worth trying."""
        if not (self.fits(c) and self.entity_ok(c) and self.backtick_ok(c)):
            return c - 1
        link = self.link_start(c)
        if link >= 0:
            return link  # skip the whole link, not each character of it
        skip = self.code_skip(c)
        return c if skip < 0 else skip

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
                hi = min(c - 1, self.toggles[k - 1] - 3)  # jump before the fence line
                continue
            nxt = self.next_candidate(c)
            if nxt == c:
                return c
            hi = min(c - 1, nxt)  # the next cut c' = j' + len(sep) must be <= nxt

    def hard(self) -> int | None:
        c = self.end
        while c > self.start:
            nxt = self.next_candidate(c)
            if nxt == c:
                return c
            c = nxt
        return None

    def fallback(self) -> int:
        for c in range(self.end, self.start, -1):  # drop the link and code-block rules
            if self.fits(c) and self.entity_ok(c) and self.backtick_ok(c):
                return c
        for c in range(self.end, self.start, -1):  # drop the backtick rule
            if self.fits(c) and self.entity_ok(c) and self.seam_ok(c):
                return c
        # Only conservative entity checks failed (text like "&l&l&l"): check real entities,
        # which needs up to 3 characters after the cut, so stay 3 before the window end.
        for c in range(self.end - 3, self.start, -1):
            if (
                self.fits(c)
                and self.seam_ok(c)
                and not any(
                    self.text.startswith(e, p) and p + len(e) > c
                    for p in range(max(self.start, c - 4), c)
                    for e in _ENTITIES
                )
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
