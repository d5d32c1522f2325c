"""The model seam: what an answer's caller sees of a model, whatever serves it.

``ModelClient.answer`` is one whole model call, retries included: it yields the answer's text as
``Delta`` events, a ``Retrying`` event before each further attempt (the text so far is void: the next
attempt starts over), and one ``Finished`` at the end. It raises ``bot.errors.ModelError`` subclasses;
``ContextTooLong`` is raised at once, never retried as is (the caller trims the prompt and calls
again). A new provider is a new module beside ``openai.py`` that implements this Protocol, and a
branch in ``build_model`` (``bot/model/__init__.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from bot.errors import ModelError


@dataclass(frozen=True, slots=True)
class Delta:
    text: str


@dataclass(frozen=True, slots=True)
class Retrying:
    """The partial text so far must be discarded; the next attempt starts over."""

    attempt: int  # the attempt about to start, 2..attempts
    attempts: int
    error: ModelError
    wait: float  # seconds until it starts


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: str | None  # "stop", "length", "content_filter", ... as the server said
    prompt_tokens: int | None
    completion_tokens: int | None


ModelEvent = Delta | Retrying | Finished


class ModelClient(Protocol):
    def answer(self, messages: list[dict[str, Any]]) -> AsyncIterator[ModelEvent]:
        """The whole call with retries and deadlines; raises ``ModelError`` subclasses."""
        ...

    async def ping(self, *, timeout: float) -> None:
        """Readiness: the server answers. Raises a ``ModelError`` that says why not."""
        ...

    async def probe(self, *, timeout: float) -> str:
        """``bot check``: a one-token completion with the configured model; the model name served."""
        ...

    async def close(self) -> None: ...
