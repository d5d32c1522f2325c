"""Block-level rendering, line by line: fenced code, headings, rules, quotes, lists, tables, paragraphs.

Fence lines in the result are exactly ```````; every other line has its backtick runs broken
(``safe.break_backticks``). Inline content is rendered by ``inline.inline``.
"""

from __future__ import annotations

import re
import unicodedata

from bot.render.inline import inline
from bot.render.safe import BULLETS, FENCE, HR, break_backticks, close_open_fence, escape

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_FENCE_CLOSE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*$")
_HEADING = re.compile(r"^ {0,3}(?P<level>#{1,6})(?:[ \t]+(?P<text>.*?))?(?:[ \t]+#+)?[ \t]*$")
_HR = re.compile(r"^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_QUOTE = re.compile(r"^(?: {0,3}> ?)+")
_BULLET = re.compile(r"^(?P<indent>[ \t]*)[-*+](?:[ \t]+(?P<rest>.*))?$")
_ORDERED = re.compile(r"^(?P<indent>[ \t]*)(?P<num>\d{1,9}[.)])(?:[ \t]+(?P<rest>.*))?$")
_TASK = re.compile(r"^\[(?P<mark>[ xX])\](?:[ \t]+(?P<rest>.*))?$")
_TABLE_SEP = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")


def to_mrkdwn(markdown: str) -> str:
    """Render model Markdown (possibly a partial, streaming answer) as Slack mrkdwn."""
    lines = markdown.replace("\r\n", "\n").split("\n")
    return close_open_fence("\n".join(text for text, _ in _render_lines(lines)))


def _indent_width(indent: str) -> int:
    return len(indent.expandtabs(4))


def _display_width(text: str) -> int:
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def _render_lines(lines: list[str]) -> list[tuple[str, bool]]:
    """Render a list of Markdown lines into mrkdwn lines, each with whether it is code.

    Fence lines in the result are exactly ```````; every other line has its backtick runs broken.
    """
    out: list[tuple[str, bool]] = []
    list_stack: list[int] = []  # indentation widths of the open list levels
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]

        fence = _FENCE_OPEN.match(line)
        if fence and not (fence.group("fence")[0] == "`" and "`" in fence.group("info")):
            i = _render_fence(lines, i, fence, out)
            continue

        if not line.strip():
            out.append(("", False))
            i += 1
            continue

        heading = _HEADING.match(line)
        if heading:
            list_stack.clear()
            text = inline(heading.group("text") or "", bold_ok=False).strip()
            out.append((break_backticks(f"*{text}*") if text else "", False))
            i += 1
            continue

        if _HR.match(line):
            list_stack.clear()
            out.append((HR, False))
            i += 1
            continue

        quote = _QUOTE.match(line)
        if quote:
            list_stack.clear()
            inner: list[str] = []
            while i < n and (quote := _QUOTE.match(lines[i])):
                inner.append(lines[i][quote.end() :])
                i += 1
            # A code block (or table) in a quote is shown unquoted: its fences stay at line starts.
            for text, code in _render_lines(inner):
                out.append((text, True) if code else (f"> {text}" if text else ">", False))
            continue

        item = _BULLET.match(line) or _ORDERED.match(line)
        if item:
            level = _list_level(list_stack, _indent_width(item.group("indent")))
            rest = item.group("rest") or ""
            if "num" in item.groupdict() and item.group("num"):
                marker = item.group("num")
            else:
                marker = BULLETS[level % len(BULLETS)]
                task = _TASK.match(rest)
                if task:
                    marker = "☐" if task.group("mark") == " " else "☑"
                    rest = task.group("rest") or ""
            body = inline(rest)
            out.append((break_backticks(" " * (4 * level) + marker + (" " + body if body else "")), False))
            i += 1
            continue

        if "|" in line and i + 1 < n:
            table_end = _table_end(lines, i)
            if table_end is not None:
                list_stack.clear()
                out.extend((text, True) for text in _render_table(lines[i:table_end]))
                i = table_end
                continue

        if line[:1] not in (" ", "\t"):
            list_stack.clear()
        out.append((break_backticks(inline(line)), False))
        i += 1
    return out


def _render_fence(lines: list[str], start: int, opener: re.Match[str], out: list[tuple[str, bool]]) -> int:
    """Render the fenced code block opened at ``lines[start]``; return the index after it."""
    char = opener.group("fence")[0]
    length = len(opener.group("fence"))
    indent = _indent_width(opener.group("indent"))
    out.append((FENCE, True))
    i = start + 1
    while i < len(lines):
        close = _FENCE_CLOSE.match(lines[i])
        if close and close.group("fence")[0] == char and len(close.group("fence")) >= length:
            i += 1
            break
        content = lines[i]
        strip = 0
        while strip < len(content) and strip < indent and content[strip] == " ":
            strip += 1
        out.append((break_backticks(escape(content[strip:])), True))
        i += 1
    out.append((FENCE, True))  # also closes a fence left open by a partial answer
    return i


def _list_level(stack: list[int], indent: int) -> int:
    while stack and stack[-1] > indent:
        stack.pop()
    if not stack or stack[-1] < indent:
        stack.append(indent)
    return len(stack) - 1


def _split_row(line: str) -> list[str]:
    """The cells of a GFM table row (``\\|`` is a literal pipe)."""
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    cells: list[str] = []
    current: list[str] = []
    j = 0
    while j < len(text):
        ch = text[j]
        if ch == "\\" and j + 1 < len(text) and text[j + 1] == "|":
            current.append("|")
            j += 2
            continue
        if ch == "|":
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        j += 1
    cells.append("".join(current).strip())
    return cells


def _table_end(lines: list[str], start: int) -> int | None:
    """If a GFM table starts at ``lines[start]``, the index after its last row."""
    sep = lines[start + 1]
    if "|" not in sep or not _TABLE_SEP.match(sep):
        return None
    if len(_split_row(lines[start])) != len(_split_row(sep)):
        return None
    end = start + 2
    while end < len(lines) and lines[end].strip() and "|" in lines[end] and not _FENCE_OPEN.match(lines[end]):
        end += 1
    return end


def _render_table(rows: list[str]) -> list[str]:
    header = [inline(c, mode="plain") for c in _split_row(rows[0])]
    aligns: list[str] = []
    for cell in _split_row(rows[1]):
        if cell.startswith(":") and cell.endswith(":") and len(cell) > 1:
            aligns.append("center")
        elif cell.endswith(":"):
            aligns.append("right")
        else:
            aligns.append("left")
    ncols = len(header)
    body: list[list[str]] = []
    for row in rows[2:]:
        cells = [inline(c, mode="plain") for c in _split_row(row)][:ncols]
        body.append(cells + [""] * (ncols - len(cells)))
    widths = [max(1, *(_display_width(r[c]) for r in [header, *body])) for c in range(ncols)]

    def fmt(cells: list[str]) -> str:
        padded: list[str] = []
        for cell, width, align in zip(cells, widths, aligns, strict=True):
            gap = width - _display_width(cell)
            if align == "right":
                padded.append(" " * gap + cell)
            elif align == "center":
                padded.append(" " * (gap // 2) + cell + " " * (gap - gap // 2))
            else:
                padded.append(cell + " " * gap)
        return " | ".join(padded).rstrip()

    lines = [fmt(header), "-+-".join("-" * w for w in widths), *(fmt(r) for r in body)]
    return [FENCE, *(break_backticks(escape(line)) for line in lines), FENCE]
