"""The collected view: an answer gathered whole, for a /ask answered through its response_url (5 posts
in 30 minutes allow no edits: one final post). ``__aexit__`` sends it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from bot.blocks import Button
from bot.render import to_mrkdwn

logger = logging.getLogger(__name__)


class CollectedView:
    def __init__(
        self, *, header: str, notes: list[str], footer: str, send: Callable[[str], Awaitable[bool]]
    ) -> None:
        self._header = header
        self._notes = notes
        self._footer = footer
        self._send = send
        self._raw = ""
        self._note: str | None = None
        self.sent = False

    @property
    def text(self) -> str:
        return self._raw

    @property
    def messages(self) -> list[str]:
        return []

    @property
    def edits(self) -> int:
        return 0

    def append(self, delta: str) -> None:
        self._raw += delta

    def replace(self, text: str) -> None:
        self._raw = text

    def set_status(self, status: str | None) -> None:
        pass  # response_url allows too few posts for a "retrying" status

    def progress(self, title: str, *, done: bool) -> None:
        pass

    def finish(self, note: str | None = None, *, button: Button | None = None) -> None:
        self._note = note  # no buttons through response_url

    def whole_text(self) -> str:
        answer = to_mrkdwn(self._raw)
        parts = (self._header, *self._notes, answer, self._note, self._footer)
        return "\n\n".join(p for p in parts if p)

    async def __aenter__(self) -> CollectedView:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            return
        self.sent = await self._send(self.whole_text())
