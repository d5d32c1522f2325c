"""Model Markdown (CommonMark + GFM) → Slack mrkdwn. Pure: no I/O, stdlib only.

Design
------
- **Safety first.** Every ``&``, ``<`` and ``>`` of the input is escaped (also inside code), so the
  model can never produce ``<!here>``, ``<@U1>``, ``<#C1>`` or any other Slack control sequence.
  The only raw ``<`` in the output starts a link this module built, ``<url>`` or ``<url|label>``,
  whose url starts with ``http://``, ``https://`` or ``mailto:`` and holds no whitespace, ``<``,
  ``>`` or ``|`` (a ``|`` in a url is percent-encoded as ``%7C``; one in a label becomes ``¦``).
  The only other raw ``>`` is a blockquote marker at the start of a line.
- **Fences.** The only lines that start with ``````` are the renderer's own fence lines, each
  exactly ``````` (the language is dropped), and they are always balanced. A run of three or more
  backticks anywhere else (inside code, in prose) gets a zero-width space (U+200B) between its
  backticks, so it can neither open nor close a Slack code block. An unclosed fence at the end (a
  partial, streaming answer) is closed.
- **Blocks** are recognised line by line: fenced code, ATX headings (→ a bold line), horizontal
  rules (→ ``──────────``), blockquotes (all ``>`` levels fold into one, Slack has no nesting; a
  code block or table inside a quote is shown unquoted, so every fence is a whole line),
  bullet lists (→ ``•``/``◦``/``▪``, 4 spaces per nesting level), ordered lists (kept, re-indented
  when nested), GFM task items (→ ``☐``/``☑``) and GFM tables (→ a code block with aligned columns).
  Everything else is a paragraph line whose leading whitespace is kept.
- **Inlines** follow CommonMark's precedence: code spans, autolinks, links and images are parsed
  first, then emphasis with the spec's delimiter-run algorithm (flanking rules, rule of 3), so
  ``snake_case`` and ``2 * 3 * 4`` stay as they are. ``**x**``/``__x__`` → ``*x*``, ``*x*``/``_x_``
  → ``_x_``, ``***x***`` → ``*_x_*``, ``~~x~~`` → ``~x~``; a style nested in itself is flattened
  (Slack cannot nest them). Bare ``http(s)://`` URLs are kept verbatim as text (Slack autolinks
  them) and are exempt from emphasis parsing.
- Robust: any string renders without raising; prose without Markdown renders as ``escape(prose)``
  (``\\r\\n`` is normalised to ``\\n``). Emphasis and code spans do not span lines.
"""

from __future__ import annotations

import bisect
import re
import string
import unicodedata
from typing import Literal

__all__ = ["close_open_fence", "escape", "to_mrkdwn"]

Mode = Literal["slack", "plain", "label"]
"""``slack``: mrkdwn. ``plain``: text for a table cell (links → ``label (url)``).
``label``: text for a link label (links → their label)."""

FENCE = "```"
HR = "─" * 10
BULLETS = ("•", "◦", "▪")
ZWSP = "\u200b"
_ALLOWED_SCHEMES = ("http://", "https://", "mailto:")
_MAX_LINK_DEPTH = 2  # links inside link labels are parsed this deep; deeper brackets are text
_MAX_LABEL = 500  # a link label longer than this is not looked for (keeps long lines linear)
_MAX_DEST = 4000

_FENCE_LINE = re.compile(r"^```", re.MULTILINE)
_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_FENCE_CLOSE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*$")
_HEADING = re.compile(r"^ {0,3}(?P<level>#{1,6})(?:[ \t]+(?P<text>.*?))?(?:[ \t]+#+)?[ \t]*$")
_HR = re.compile(r"^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_QUOTE = re.compile(r"^(?: {0,3}> ?)+")
_BULLET = re.compile(r"^(?P<indent>[ \t]*)[-*+](?:[ \t]+(?P<rest>.*))?$")
_ORDERED = re.compile(r"^(?P<indent>[ \t]*)(?P<num>\d{1,9}[.)])(?:[ \t]+(?P<rest>.*))?$")
_TASK = re.compile(r"^\[(?P<mark>[ xX])\](?:[ \t]+(?P<rest>.*))?$")
_TABLE_SEP = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_BACKTICK_RUN = re.compile(r"`{3,}")
_ANY_BACKTICKS = re.compile(r"`+")
_SPECIAL = re.compile(r"[\\`*_~\[!<]|(?i:https?://)")
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*)>")
# Stricter than CommonMark's (which allows e.g. "!" and "|"): plain addresses with a dotted domain.
_EMAIL = re.compile(
    r"<([A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+)>"
)
_BARE_URL = re.compile(r"(?i:https?://)[^\s<>`]*")
_ASCII_PUNCT = frozenset(string.punctuation)


# -- public API ------------------------------------------------------------------------------
def escape(text: str) -> str:
    """Escape the three characters Slack treats specially: ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def close_open_fence(mrkdwn: str) -> str:
    """Close a code block left open at the end.

    A fence is a line that starts with three backticks; if their number is odd, a closing fence
    line is appended (``"\\n```"``, or just ``"```"`` when the text already ends with a newline).
    """
    if len(_FENCE_LINE.findall(mrkdwn)) % 2 == 0:
        return mrkdwn
    return mrkdwn + (FENCE if mrkdwn.endswith("\n") else "\n" + FENCE)


def to_mrkdwn(markdown: str) -> str:
    """Render model Markdown (possibly a partial, streaming answer) as Slack mrkdwn."""
    lines = markdown.replace("\r\n", "\n").split("\n")
    return close_open_fence("\n".join(text for text, _ in _render_lines(lines)))


# -- helpers ---------------------------------------------------------------------------------
def _break_backticks(text: str) -> str:
    """Put a zero-width space between the backticks of every run of three or more."""
    if "```" not in text:
        return text
    return _BACKTICK_RUN.sub(lambda m: ZWSP.join(m.group()), text)


def _safe_url(url: str) -> str | None:
    """The url as it may appear inside ``<...>``, or None if it must not become a link."""
    lowered = url.lower()
    for scheme in _ALLOWED_SCHEMES:
        if lowered.startswith(scheme) and len(url) > len(scheme):
            url = scheme + url[len(scheme) :]
            break
    else:
        return None
    if any(ch.isspace() for ch in url):
        return None
    return escape(url).replace("|", "%7C")


def _safe_label(text: str) -> str:
    """A link label: escaped, no ``|`` (→ ``¦``), no line breaks."""
    return escape(" ".join(text.replace("|", "¦").split()))


def _link(url: str, label: str) -> str | None:
    safe = _safe_url(url)
    if safe is None:
        return None
    label_out = _safe_label(label)
    if not label_out or label_out == safe:
        return f"<{safe}>"
    return f"<{safe}|{label_out}>"


def _indent_width(indent: str) -> int:
    return len(indent.expandtabs(4))


def _display_width(text: str) -> int:
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


# -- blocks ----------------------------------------------------------------------------------
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
            text = _inline(heading.group("text") or "", bold_ok=False).strip()
            out.append((_break_backticks(f"*{text}*") if text else "", False))
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
            body = _inline(rest)
            out.append((_break_backticks(" " * (4 * level) + marker + (" " + body if body else "")), False))
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
        out.append((_break_backticks(_inline(line)), False))
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
        out.append((_break_backticks(escape(content[strip:])), True))
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
    header = [_inline(c, mode="plain") for c in _split_row(rows[0])]
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
        cells = [_inline(c, mode="plain") for c in _split_row(row)][:ncols]
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
    return [FENCE, *(_break_backticks(escape(line)) for line in lines), FENCE]


# -- inlines ---------------------------------------------------------------------------------
class _Delim:
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
        self.prev: _Delim | None = None
        self.next: _Delim | None = None
        self.idx = 0


def _is_space(ch: str) -> bool:
    return not ch or ch.isspace()


def _is_punct(ch: str) -> bool:
    return bool(ch) and unicodedata.category(ch)[0] in "PS"


def _flanking(prev: str, nxt: str) -> tuple[bool, bool]:
    left = not _is_space(nxt) and (not _is_punct(nxt) or _is_space(prev) or _is_punct(prev))
    right = not _is_space(prev) and (not _is_punct(prev) or _is_space(nxt) or _is_punct(nxt))
    return left, right


class _Inline:
    """Parse one line of inline Markdown and render it."""

    def __init__(self, text: str, mode: Mode, bold_ok: bool, depth: int) -> None:
        self.text = text
        self.mode = mode
        self.bold_ok = bold_ok
        self.depth = depth
        self.tokens: list[str | _Delim] = []
        self.pending: list[str] = []  # raw text not yet escaped
        self._runs: dict[int, list[int]] | None = None  # backtick run length -> starts

    # tokens
    def _flush(self) -> None:
        if self.pending:
            raw = "".join(self.pending)
            self.tokens.append(escape(raw) if self.mode == "slack" else raw)
            self.pending = []

    def _emit(self, rendered: str) -> None:
        self._flush()
        self.tokens.append(rendered)

    def _backtick_runs(self) -> dict[int, list[int]]:
        if self._runs is None:
            runs: dict[int, list[int]] = {}
            for m in _ANY_BACKTICKS.finditer(self.text):
                runs.setdefault(len(m.group()), []).append(m.start())
            self._runs = runs
        return self._runs

    def _closing_run(self, length: int, after: int) -> int | None:
        starts = self._backtick_runs().get(length, [])
        k = bisect.bisect_left(starts, after)
        return starts[k] if k < len(starts) else None

    # parsing
    def parse(self) -> str:
        text = self.text
        n = len(text)
        i = 0
        while i < n:
            m = _SPECIAL.search(text, i)
            if m is None:
                self.pending.append(text[i:])
                break
            if m.start() > i:
                self.pending.append(text[i : m.start()])
                i = m.start()
            ch = text[i]
            if ch == "\\":
                if i + 1 < n and text[i + 1] in _ASCII_PUNCT:
                    self.pending.append(text[i + 1])
                    i += 2
                else:
                    self.pending.append("\\")
                    i += 1
            elif ch == "`":
                i = self._code_span(i)
            elif ch in "*_~":
                i = self._delim_run(i)
            elif ch == "[" or (ch == "!" and text.startswith("[", i + 1)):
                i = self._link(i)
            elif ch == "!":
                self.pending.append("!")
                i += 1
            elif ch == "<":
                i = self._autolink(i)
            else:
                i = self._bare_url(i)
        self._flush()
        return self._render()

    def _code_span(self, i: int) -> int:
        text = self.text
        j = i
        while j < len(text) and text[j] == "`":
            j += 1
        length = j - i
        close = self._closing_run(length, j)
        if close is None:
            self.pending.append(text[i:j])
            return j
        content = text[j:close]
        if len(content) >= 2 and content[0] == " " and content[-1] == " " and content.strip(" "):
            content = content[1:-1]
        if self.mode == "slack":
            self._emit("`" + escape(content) + "`")
        else:
            self.pending.append(content)
        return close + length

    def _delim_run(self, i: int) -> int:
        text = self.text
        ch = text[i]
        j = i
        while j < len(text) and text[j] == ch:
            j += 1
        count = j - i
        if ch == "~" and count != 2:
            self.pending.append(text[i:j])
            return j
        prev = text[i - 1] if i > 0 else ""
        nxt = text[j] if j < len(text) else ""
        left, right = _flanking(prev, nxt)
        if ch == "_":
            can_open = left and (not right or _is_punct(prev))
            can_close = right and (not left or _is_punct(nxt))
        else:
            can_open, can_close = left, right
        self._flush()
        self.tokens.append(_Delim(ch, count, can_open, can_close))
        return j

    def _bare_url(self, i: int) -> int:
        text = self.text
        prev = text[i - 1] if i > 0 else ""
        if prev and not prev.isspace() and prev not in "*_~(\"'":
            self.pending.append(text[i])
            return i + 1
        m = _BARE_URL.match(text, i)
        assert m is not None  # _SPECIAL matched a scheme here
        url = m.group()
        while url:
            last = url[-1]
            if last in "?!.,:*_~'\";":
                url = url[:-1]
            elif last == ")" and url.count(")") > url.count("("):
                url = url[:-1]
            else:
                break
        if "://" not in url or url.endswith("://"):
            self.pending.append(text[i])
            return i + 1
        self._emit(escape(url) if self.mode == "slack" else url)
        return i + len(url)

    def _autolink(self, i: int) -> int:
        text = self.text
        m = _AUTOLINK.match(text, i)
        if m:
            url = m.group(1)
            rendered = _link(url, "") if self.mode == "slack" else None
            if rendered is not None:
                self._emit(rendered)
            elif self.mode == "slack" or _safe_url(url) is None:
                self.pending.append(m.group())
            else:
                self.pending.append(url)
            return m.end()
        m = _EMAIL.match(text, i)
        if m:
            address = m.group(1)
            if self.mode == "slack":
                self._emit(_link("mailto:" + address, address) or escape(m.group()))
            else:
                self.pending.append(address)
            return m.end()
        self.pending.append("<")
        return i + 1

    def _link(self, i: int) -> int:
        text = self.text
        image = text[i] == "!"
        start = i + 1 if image else i
        parsed = self._parse_link(start) if self.depth < _MAX_LINK_DEPTH else None
        if parsed is None:
            self.pending.append(text[i : start + 1])
            return start + 1
        label_src, url, end = parsed
        label = _Inline(label_src, "label", True, self.depth + 1).parse()
        if self.mode == "slack":
            rendered = _link(url, label)
            if rendered is None:
                self.pending.append(f"{label} ({url})" if label else url)
            else:
                self._emit(rendered)
        elif self.mode == "plain":
            if label and label != url:
                self.pending.append(f"{label} ({url})")
            else:
                self.pending.append(url)
        else:
            self.pending.append(label)
        return end

    def _parse_link(self, start: int) -> tuple[str, str, int] | None:
        """Parse ``[label](dest "title")`` at ``start``; return (label, url, end) or None."""
        text = self.text
        n = len(text)
        depth = 0
        j = start
        limit = min(n, start + _MAX_LABEL)
        label_end = -1
        while j < limit:
            ch = text[j]
            if ch == "\\":
                j += 2
                continue
            if ch == "`":
                k = j
                while k < n and text[k] == "`":
                    k += 1
                close = self._closing_run(k - j, k)
                j = close + (k - j) if close is not None else k
                continue
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
                if depth == 0:
                    label_end = j
                    break
            j += 1
        if label_end < 0 or not text.startswith("(", label_end + 1):
            return None
        j = label_end + 2
        while j < n and text[j] in " \t":
            j += 1
        dest: list[str] = []
        if j < n and text[j] == "<":
            j += 1
            while j < n and text[j] not in "<>\n":
                if text[j] == "\\" and j + 1 < n and text[j + 1] in _ASCII_PUNCT:
                    j += 1
                dest.append(text[j])
                j += 1
            if j >= n or text[j] != ">":
                return None
            j += 1
        else:
            parens = 0
            limit = min(n, j + _MAX_DEST)
            while j < limit:
                ch = text[j]
                if ch.isspace() or ord(ch) < 0x20:
                    break
                if ch == "\\" and j + 1 < n and text[j + 1] in _ASCII_PUNCT:
                    dest.append(text[j + 1])
                    j += 2
                    continue
                if ch == "(":
                    parens += 1
                elif ch == ")":
                    if parens == 0:
                        break
                    parens -= 1
                dest.append(ch)
                j += 1
            if parens:
                return None
        k = j
        while k < n and text[k] in " \t":
            k += 1
        if k < n and text[k] in "\"'(" and k > j:
            closer = ")" if text[k] == "(" else text[k]
            m = k + 1
            while m < n and text[m] != closer:
                m += 2 if text[m] == "\\" else 1
            if m >= n:
                return None
            k = m + 1
            while k < n and text[k] in " \t":
                k += 1
        if k >= n or text[k] != ")":
            return None
        return text[start + 1 : label_end], "".join(dest), k + 1

    # emphasis
    def _render(self) -> str:
        delims = [t for t in self.tokens if isinstance(t, _Delim)]
        kinds = _process_emphasis(delims)
        if not kinds:
            return "".join(t if isinstance(t, str) else t.char * t.count for t in self.tokens)
        events: list[tuple[str, int | str]] = []
        for tok in self.tokens:
            if isinstance(tok, str):
                if tok:
                    events.append(("text", tok))
                continue
            events.extend(("close", mid) for mid in tok.closes)
            if tok.count:
                events.append(("text", tok.char * tok.count))
            events.extend(("open", mid) for mid in tok.opens)
        _normalise_bold_italic(events, kinds)
        markers = {"strong": "*", "em": "_", "strike": "~"}
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
                show = self.mode == "slack" and active[style] == 0 and (style != "strong" or self.bold_ok)
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


def _process_emphasis(delims: list[_Delim]) -> list[str]:
    """CommonMark's "process emphasis"; records match ids on the runs; returns each match's kind."""
    kinds: list[str] = []
    for idx, d in enumerate(delims):
        d.idx = idx
        d.prev = delims[idx - 1] if idx else None
        d.next = delims[idx + 1] if idx + 1 < len(delims) else None

    def unlink(d: _Delim) -> None:
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
        found: _Delim | None = None
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


def _inline(text: str, *, mode: Mode = "slack", bold_ok: bool = True) -> str:
    """Render one line of inline Markdown. In ``plain``/``label`` mode the result is unescaped."""
    return _Inline(text, mode, bold_ok, 0).parse()
