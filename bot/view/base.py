"""The answer view seam: how a growing answer is shown in Slack.

The runner writes into a view (``append``/``replace``/``set_status``, synchronous and cheap) and says
how it ends (``finish``); the view owns every message of the answer from its ``__aenter__`` to its
``__aexit__``, which sends the final state. Implementations: ``edit.EditView`` (edits a placeholder
within the workspace's chat.update budget) and ``collected.CollectedView`` (a /ask answer sent whole
through response_url). The runner does not know which one it got.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from bot.blocks import Button


class AnswerView(Protocol):
    @property
    def text(self) -> str:
        """The raw answer so far (the model's Markdown)."""
        ...

    @property
    def messages(self) -> list[str]:
        """The ts of every message that shows the answer (in order)."""
        ...

    @property
    def edits(self) -> int:
        """Edits sent (metrics)."""
        ...

    def append(self, delta: str) -> None: ...

    def replace(self, text: str) -> None:
        """Start over with ``text`` (a retried stream replaces, never appends)."""
        ...

    def set_status(self, status: str | None) -> None:
        """A short line about the answer's progress ("retrying, 2 of 3…"); ``None`` clears it."""
        ...

    def progress(self, title: str, *, done: bool) -> None:
        """A step of work while the answer is written (a retry); shown as the view can."""
        ...

    def finish(self, note: str | None = None, *, button: Button | None = None) -> None:
        """How the answer ends: a note under it (a failure, a stop) and a button on its last
        message. Sent by ``__aexit__``."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
