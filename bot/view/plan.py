"""What an answer's messages should show: pure functions, no I/O (unit-tested exhaustively).

``pieces`` renders the answer (model Markdown → Slack mrkdwn, ``bot.render``), adds the prefix, status
or note, and splits it into messages (``bot.split``). ``button_of`` says which message carries which
button, ``differs`` whether a message must be edited. ``streaming_edge`` holds back an emphasis or
link marker the model has opened but not yet closed, so a progress edit never shows a lone ``*``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.blocks import Button
from bot.render import to_mrkdwn
from bot.split import split_message

_FENCE = re.compile(r"^\s*(```|~~~)", re.MULTILINE)
# A marker that opens an inline span: at the start of a word, before a non-space character.
_OPENER = re.compile(r"(?<![\w*_~`])(\*\*|__|~~|\*|_|`)(?=[^\s*_~`])")


@dataclass(frozen=True, slots=True)
class Frame:
    """Everything the messages depend on."""

    raw: str
    final: bool
    prefix: str = ""
    status: str | None = None
    note: str | None = None
    placeholder: str = ""


def _unclosed(line: str) -> int | None:
    """Where the first inline span of ``line`` that is opened and not closed starts, if any."""
    for match in _OPENER.finditer(line):
        marker, after = match.group(1), match.end()
        closer = re.compile(rf"(?<=\S){re.escape(marker)}(?![\w])" if marker != "`" else r"`")
        if closer.search(line, after) is None:
            return match.start()
    bracket = line.rfind("[")
    if bracket != -1:
        tail = line[bracket:]
        if "]" not in tail or ("](" in tail and ")" not in tail[tail.index("](") + 2 :]):
            return bracket
    return None


def streaming_edge(raw: str) -> str:
    """``raw`` without an inline marker it opens and has not closed yet on its last line (the text
    from there waits for the close, the line's end, or the final edit). Inside an open code fence
    nothing is held back: the renderer closes the fence."""
    if len(_FENCE.findall(raw)) % 2:
        return raw
    start = raw.rfind("\n") + 1
    cut = _unclosed(raw[start:])
    return raw if cut is None else raw[: start + cut]


def pieces(frame: Frame, *, limit: int) -> list[str]:
    """The messages the answer needs now."""
    raw = frame.raw if frame.final else streaming_edge(frame.raw)
    body = to_mrkdwn(raw)
    parts = [p for p in (frame.prefix, body) if p]
    if frame.final and frame.note:
        parts.append(frame.note)
    if not frame.final and frame.status:
        parts.append(frame.status)
    if not parts or (not frame.final and not body and not frame.status):
        parts.append(frame.placeholder)
    return split_message("\n\n".join(parts), limit=limit)


def button_of(
    index: int, count: int, *, final: bool, final_button: Button | None, stop: bool
) -> Button | None:
    """Only the last message has a button: Stop while the answer streams, the final button after."""
    if index != count - 1:
        return None
    return final_button if final else ("stop" if stop else None)


def differs(
    index: int,
    wanted: list[str],
    button: Button | None,
    *,
    sent: list[str],
    sent_buttons: list[Button | None],
) -> bool:
    """Must message ``index`` be edited (or posted) to show ``wanted[index]`` with ``button``? A
    message with a button carries its text in blocks, a pure function of (text, button), so the
    pair is what is compared: no blocks are built for that."""
    if index >= len(sent) or index >= len(wanted):
        return True
    return sent[index] != wanted[index] or sent_buttons[index] != button
