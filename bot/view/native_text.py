"""What a native stream sends next: the answer's safe Markdown and how it is cut into messages. Pure
(no I/O), so every rule is unit-tested; ``native.NativeView`` does the calls.

``raw`` is the model's Markdown. ``out`` is what the messages show, in order: the prefix (notes of
ours), then the answer with the safety rewrites (``markdown.neutralise``) applied to stable pieces
only (``markdown.stable_end``), so ``out`` only ever grows, as a stream must. ``placed`` is how much
of ``out`` is in Slack (or in a call on its way); a message that has to end inside a code fence is
closed with a fence line, and the next one starts with ``head``, the fence reopened.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.view.markdown import close_fence, cut_point, fence_at, neutralise, stable_end

CLOSE_RESERVE = 16  # room kept in a message for the line that closes a fence


@dataclass(frozen=True, slots=True)
class Piece:
    """The next text of a message: ``text`` (a closing fence line included when ``full``), how much
    of ``out`` it uses (``used``), whether the message ends with it (``full``) and what the next
    message starts with (``head``)."""

    text: str
    used: int
    full: bool
    head: str = ""


class NativeText:
    def __init__(self, *, prefix: str, limit: int) -> None:
        self.limit = limit
        self.prefix = f"{prefix}\n\n" if prefix else ""
        self.raw = ""
        self.out = self.prefix
        self.done = 0  # characters of ``raw`` turned into ``out``
        self.placed = 0  # characters of ``out`` sent
        self.head = ""  # what the next message starts with (a fence reopened)

    def reset(self, raw: str = "") -> None:
        """Start over (a retried answer replaces the text): nothing is placed any more."""
        self.raw, self.out, self.done, self.placed, self.head = raw, self.prefix, 0, 0, ""

    @property
    def has_words(self) -> bool:
        return len(self.out) > len(self.prefix)

    @property
    def pending(self) -> str:
        return self.out[self.placed :]

    def advance(self, *, final: bool) -> str:
        """Turn the stable part of ``raw`` into ``out``; returns what was added."""
        end = len(self.raw) if final else max(self.done, stable_end(self.raw, self.done))
        if end <= self.done:
            return ""
        added = neutralise(self.raw[self.done : end])
        self.out += added
        self.done = end
        return added

    def piece(self, shown: int, *, roll: bool = False) -> Piece:
        """The next text for a message that shows ``shown`` characters: all that is pending if it
        fits (and ``roll`` is not asked), else the part up to a safe cut, with the message full."""
        text = self.head + self.pending
        room = self.limit - shown - CLOSE_RESERVE
        if not roll and len(text) <= room:
            return Piece(text, len(self.out) - self.placed, full=False)
        limit = max(room, len(self.head)) if len(text) > room else len(text)
        cut = cut_point(text, start=len(self.head), limit=limit)
        used = cut - len(self.head)
        opener = fence_at(self.out[: self.placed + used])
        if opener is None:
            return Piece(text[:cut], used, full=True)
        return Piece(close_fence(text[:cut], opener), used, full=True, head=opener + "\n")

    def place(self, piece: Piece) -> None:
        """``piece`` is in Slack (or on its way)."""
        self.placed += piece.used
        if piece.used or piece.full:
            self.head = piece.head if piece.full else ""

    def rest(self) -> str:
        """Everything not placed yet (with the reopened fence), for a message finished by an edit."""
        return self.head + self.pending

    def closing(self, shown_end: int) -> tuple[str, str]:
        """A message ended (by Slack) after ``out[:shown_end]``: the fence line to close it with, if
        it ends inside code, and the head of the next message ("" and "" if not)."""
        opener = fence_at(self.out[:shown_end])
        return ("", "") if opener is None else (close_fence("", opener), opener + "\n")
