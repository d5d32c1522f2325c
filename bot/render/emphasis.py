"""Emphasis: CommonMark's delimiter-run algorithm (flanking rules, rule of 3) over the tokens of one line.

``Delim`` is a run of ``*``, ``_`` or ``~~`` found by the inline parser; ``render_line`` matches the runs
(``process_emphasis``) and writes the line with Slack's markers, flattening a style nested in itself.
"""

from __future__ import annotations

import unicodedata

from bot.render.safe import Mode

_MARKERS = {"strong": "*", "em": "_", "strike": "~"}


class Delim:
    """A run of ``*``, ``_`` or ``~~`` that may open or close emphasis."""

    __slots__ = ("can_close", "can_open", "char", "closes", "count", "idx", "next", "opens", "orig", "prev")

    def __init__(self, char: str, count: int, can_open: bool, can_close: bool) -> None:
        self.char = char
        self.count = count
        self.orig = count
        self.can_open = can_open
        self.can_close = can_close
        self.opens: list[int] = []  # match ids this run opens, outermost first
        self.closes: list[int] = []  # match ids this run closes, innermost first
        self.prev: Delim | None = None
        self.next: Delim | None = None
        self.idx = 0


def _is_space(ch: str) -> bool:
    return not ch or ch.isspace()


def is_punct(ch: str) -> bool:
    return bool(ch) and unicodedata.category(ch)[0] in "PS"


def flanking(prev: str, nxt: str) -> tuple[bool, bool]:
    left = not _is_space(nxt) and (not is_punct(nxt) or _is_space(prev) or is_punct(prev))
    right = not _is_space(prev) and (not is_punct(prev) or _is_space(nxt) or is_punct(nxt))
    return left, right


def render_line(tokens: list[str | Delim], mode: Mode, bold_ok: bool) -> str:
    """The line of ``tokens`` (rendered text and delimiter runs) with its emphasis as Slack markers."""
    delims = [t for t in tokens if isinstance(t, Delim)]
    kinds = process_emphasis(delims)
    if not kinds:
        return "".join(t if isinstance(t, str) else t.char * t.count for t in tokens)
    events: list[tuple[str, int | str]] = []
    for tok in tokens:
        if isinstance(tok, str):
            if tok:
                events.append(("text", tok))
            continue
        events.extend(("close", mid) for mid in tok.closes)
        if tok.count:
            events.append(("text", tok.char * tok.count))
        events.extend(("open", mid) for mid in tok.opens)
    _normalise_bold_italic(events, kinds)
    markers = _MARKERS
    active = dict.fromkeys(markers, 0)
    shown: dict[int, bool] = {}
    out: list[str] = []
    for kind, value in events:
        if kind == "text":
            assert isinstance(value, str)
            out.append(value)
            continue
        assert isinstance(value, int)
        style = kinds[value]
        if kind == "open":
            show = mode == "slack" and active[style] == 0 and (style != "strong" or bold_ok)
            shown[value] = show
            active[style] += 1
            if show:
                out.append(markers[style])
        else:
            active[style] -= 1
            if shown.get(value):
                out.append(markers[style])
    return "".join(out)


def _normalise_bold_italic(events: list[tuple[str, int | str]], kinds: list[str]) -> None:
    """``_*x*_`` (em around strong, nothing else inside the em) → ``*_x_*``, as Slack prefers."""
    where: dict[tuple[str, int | str], int] = {}
    for pos, event in enumerate(events):
        if event[0] != "text":
            where[event] = pos
    for mid, kind in enumerate(kinds):
        if kind != "em":
            continue
        opened, closed = where[("open", mid)], where[("close", mid)]
        if opened + 1 >= len(events) or closed == 0:
            continue
        inner, before_close = events[opened + 1], events[closed - 1]
        if (
            inner[0] == "open"
            and before_close == ("close", inner[1])
            and isinstance(inner[1], int)
            and kinds[inner[1]] == "strong"
        ):
            kinds[mid], kinds[inner[1]] = "strong", "em"


def process_emphasis(delims: list[Delim]) -> list[str]:
    """CommonMark's "process emphasis"; records match ids on the runs; returns each match's kind."""
    kinds: list[str] = []
    for idx, d in enumerate(delims):
        d.idx = idx
        d.prev = delims[idx - 1] if idx else None
        d.next = delims[idx + 1] if idx + 1 < len(delims) else None

    def unlink(d: Delim) -> None:
        if d.prev is not None:
            d.prev.next = d.next
        if d.next is not None:
            d.next.prev = d.prev

    bottoms: dict[tuple[str, bool, int], int] = {}
    cur = delims[0] if delims else None
    while cur is not None:
        if not cur.can_close or cur.count == 0:
            cur = cur.next
            continue
        key = (cur.char, cur.can_open, cur.orig % 3)
        bottom = bottoms.get(key, -1)
        op = cur.prev
        found: Delim | None = None
        while op is not None and op.idx > bottom:
            if op.char == cur.char and op.can_open and op.count:
                if cur.char == "~":
                    found = op
                    break
                odd_match = (op.can_close or cur.can_open) and (op.orig + cur.orig) % 3 == 0
                if not odd_match or (op.orig % 3 == 0 and cur.orig % 3 == 0):
                    found = op
                    break
            op = op.prev
        if found is None:
            bottoms[key] = cur.prev.idx if cur.prev is not None else -1
            nxt = cur.next
            if not cur.can_open:
                unlink(cur)
            cur = nxt
            continue
        if cur.char == "~":
            use, kind = 2, "strike"
        else:
            use = 2 if found.count >= 2 and cur.count >= 2 else 1
            kind = "strong" if use == 2 else "em"
        mid = len(kinds)
        kinds.append(kind)
        found.opens.insert(0, mid)
        cur.closes.append(mid)
        found.count -= use
        cur.count -= use
        found.next = cur  # the runs in between can no longer match
        cur.prev = found
        if found.count == 0:
            unlink(found)
        if cur.count == 0:
            nxt = cur.next
            unlink(cur)
            cur = nxt
    return kinds
