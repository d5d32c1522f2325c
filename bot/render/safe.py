"""The safety layer of the renderer: escaping, fence closing, backtick runs and the links it builds.

The only raw ``<`` the renderer outputs starts a link built here by ``link``; the only lines that start
with ``````` are its own fences (``FENCE``); runs of three or more backticks elsewhere are broken.
"""

from __future__ import annotations

import re
from typing import Literal

Mode = Literal["slack", "plain", "label"]
"""``slack``: mrkdwn. ``plain``: text for a table cell (links → ``label (url)``).
``label``: text for a link label (links → their label)."""

FENCE = "```"
HR = "─" * 10
BULLETS = ("•", "◦", "▪")
ZWSP = "\u200b"
_ALLOWED_SCHEMES = ("http://", "https://", "mailto:")

_FENCE_LINE = re.compile(r"^```", re.MULTILINE)
_BACKTICK_RUN = re.compile(r"`{3,}")


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


def break_backticks(text: str) -> str:
    """Put a zero-width space between the backticks of every run of three or more."""
    if "```" not in text:
        return text
    return _BACKTICK_RUN.sub(lambda m: ZWSP.join(m.group()), text)


def safe_url(url: str) -> str | None:
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


def safe_label(text: str) -> str:
    """A link label: escaped, no ``|`` (→ ``¦``), no line breaks."""
    return escape(" ".join(text.replace("|", "¦").split()))


def link(url: str, label: str) -> str | None:
    """``<url>`` or ``<url|label>``, or None if the url must not become a link."""
    safe = safe_url(url)
    if safe is None:
        return None
    label_out = safe_label(label)
    if not label_out or label_out == safe:
        return f"<{safe}>"
    return f"<{safe}|{label_out}>"
