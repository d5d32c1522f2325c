"""The model's Markdown as a native stream sends it: pure functions, no I/O (unit-tested).

A native stream shows standard Markdown (Slack renders it), so the answer is sent as the model wrote
it, with only the safety rewrites of ``neutralise``:

- Slack's special mentions ``<!here>``, ``<!channel>``, ``<!everyone>``, ``<!subteam^ID|@name>`` (any
  ``<!…>``) and user mentions ``<@U…>`` become plain text that pings nobody (``@here``, ``@name``
  with a zero-width space after the ``@``), as do raw ``@here``/``@channel``/``@everyone``; any other
  ``<!`` or ``<@`` is broken the same way.

A stream is append-only: text once sent cannot be taken back, so a streaming answer is sent only up
to ``stable_end`` (after its last whitespace, never inside an unclosed ``<…``): the rewrite of a piece
never changes when more text follows. ``fence_at`` and ``cut_point`` choose where a long answer
continues in a new message: at a paragraph or line outside code, else a fence is closed and reopened.
"""

from __future__ import annotations

import re

ZWSP = "\u200b"
HELD_TAIL = 256  # a word longer than this (a long URL, a code line) is sent without its last part
_TOKEN = 64  # the longest rewritable token kept whole when a long word is cut

_SPECIAL = re.compile(r"<!([^<>|\s]*)(?:\|([^<>]*))?>")
_USER = re.compile(r"<@([A-Za-z0-9]+)(?:\|([^<>]*))?>")
_BROADCAST = re.compile(r"(?<![\w@])@(here|channel|everyone)\b", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def _quiet(name: str) -> str:
    return "@" + ZWSP + name.lstrip("@")


def _special(match: re.Match[str]) -> str:
    name, label = match.group(1), match.group(2)
    if name.startswith("subteam^"):
        return _quiet(label or name.removeprefix("subteam^"))
    if name.startswith("date^"):
        return label or ""
    return _quiet(name if name in ("here", "channel", "everyone") or not label else label)


def neutralise(text: str) -> str:
    """``text`` with every mention that would ping someone made plain (see the module's doc)."""
    text = _SPECIAL.sub(_special, text)
    text = _USER.sub(lambda m: _quiet(m.group(2) or m.group(1)), text)
    text = _BROADCAST.sub(lambda m: _quiet(m.group(1)), text)
    return text.replace("<!", "<" + ZWSP + "!").replace("<@", "<" + ZWSP + "@")


def stable_end(raw: str, start: int = 0) -> int:
    """How much of a streaming ``raw`` may be sent now (``raw[:start]`` was sent already): up to its
    last whitespace and before any ``<`` not closed yet, so that no mention is cut in two. A word
    longer than ``HELD_TAIL`` waits no longer: it is cut ``_TOKEN`` characters from its end, before
    any ``<`` or ``@`` near the cut."""
    end = max(start, raw.rfind(" ", start) + 1, raw.rfind("\n", start) + 1, raw.rfind("\t", start) + 1)
    if len(raw) - end > HELD_TAIL:
        end = len(raw) - _TOKEN
        near = max(raw.rfind("<", end - _TOKEN, end), raw.rfind("@", end - _TOKEN, end))
        if near != -1:
            end = near
    opened = raw.rfind("<", start, end)
    if opened != -1 and raw.find(">", opened, end) == -1:
        end = opened
    return max(end, start)


def fence_at(text: str) -> str | None:
    """The opening line of the code fence ``text`` ends inside, if any (``"```python"``)."""
    opener: str | None = None
    marker = ""
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if match is None:
            continue
        run, info = match.group(1), match.group(2)
        if opener is None:
            opener, marker = line.strip(), run
        elif run[0] == marker[0] and len(run) >= len(marker) and not info.strip():
            opener = None
    return opener


def closing_fence(opener: str) -> str:
    """The line that closes a fence opened by ``opener``."""
    run = re.match(r"`+|~+", opener)
    return run.group(0) if run else "```"


def close_fence(text: str, opener: str) -> str:
    return text + ("" if text.endswith("\n") else "\n") + closing_fence(opener)


def cut_point(text: str, *, start: int, limit: int) -> int:
    """Where to end a message that holds ``text[:limit]`` at most and has sent ``text[:start]``
    already: after the last blank line outside code, else after the last line break outside code,
    else after any line break (the fence is closed and reopened), else after the last space, else at
    ``limit``. A break in the first quarter of the message is passed over, while a later one exists."""
    limit = min(limit, len(text))
    if limit <= start:
        return start
    floor = max(start, limit // 4)
    window = text[:limit]
    outside: list[int] = []  # line ends (after the "\n") outside a fence, in the searched part
    inside: list[int] = []
    in_fence = fence_at(window[:floor]) is not None
    pos = window.find("\n", floor)
    line_start = window.rfind("\n", 0, floor) + 1
    while pos != -1:
        if _FENCE.match(window[line_start:pos]):
            in_fence = fence_at(window[:pos]) is not None
        (inside if in_fence else outside).append(pos + 1)
        line_start = pos + 1
        pos = window.find("\n", pos + 1)
    paragraphs = [p for p in outside if window[p - 2 : p] == "\n\n"]
    for candidates in (paragraphs, outside, inside):
        if candidates:
            return candidates[-1]
    space = window.rfind(" ", floor)
    return space + 1 if space != -1 else limit
