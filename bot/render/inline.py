"""Inline Markdown of one line → mrkdwn: code spans, autolinks, links and images first, then emphasis.

CommonMark's precedence: the parser walks the line once, emitting rendered text and delimiter runs;
``emphasis.render_line`` then matches the runs. Bare ``http(s)://`` URLs are kept verbatim as text (Slack
autolinks them) and are exempt from emphasis parsing. Emphasis and code spans do not span lines.
"""

from __future__ import annotations

import bisect
import re
import string

from bot.render.emphasis import Delim, flanking, is_punct, render_line
from bot.render.safe import Mode, escape, link, safe_url

_MAX_LINK_DEPTH = 2  # links inside link labels are parsed this deep; deeper brackets are text
_MAX_LABEL = 500  # a link label longer than this is not looked for (keeps long lines linear)
_MAX_DEST = 4000

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


class _Inline:
    """Parse one line of inline Markdown and render it."""

    def __init__(self, text: str, mode: Mode, bold_ok: bool, depth: int) -> None:
        self.text = text
        self.mode = mode
        self.bold_ok = bold_ok
        self.depth = depth
        self.tokens: list[str | Delim] = []
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
        return render_line(self.tokens, self.mode, self.bold_ok)

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
        left, right = flanking(prev, nxt)
        if ch == "_":
            can_open = left and (not right or is_punct(prev))
            can_close = right and (not left or is_punct(nxt))
        else:
            can_open, can_close = left, right
        self._flush()
        self.tokens.append(Delim(ch, count, can_open, can_close))
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
            rendered = link(url, "") if self.mode == "slack" else None
            if rendered is not None:
                self._emit(rendered)
            elif self.mode == "slack" or safe_url(url) is None:
                self.pending.append(m.group())
            else:
                self.pending.append(url)
            return m.end()
        m = _EMAIL.match(text, i)
        if m:
            address = m.group(1)
            if self.mode == "slack":
                self._emit(link("mailto:" + address, address) or escape(m.group()))
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
            rendered = link(url, label)
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
        target = _link_target(text, label_end + 2)
        if target is None:
            return None
        url, end = target
        return text[start + 1 : label_end], url, end


def _link_target(text: str, j: int) -> tuple[str, int] | None:
    """Parse ``dest "title")`` (what follows ``](``) at ``j``; return (url, end) or None."""
    n = len(text)
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
    return "".join(dest), k + 1


def inline(text: str, *, mode: Mode = "slack", bold_ok: bool = True) -> str:
    """Render one line of inline Markdown. In ``plain``/``label`` mode the result is unescaped."""
    return _Inline(text, mode, bold_ok, 0).parse()
