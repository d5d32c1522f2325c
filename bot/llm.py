"""Compatibility for ``bot.engine`` until it speaks ``bot.model.ModelClient.answer``: one model call
without retries (the engine still retries it), as a stream of text deltas. Delete with that change;
nothing else may import it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bot.model.base import Delta, ModelClient
from bot.model.openai import OpenAIModel
from bot.model.stream import Attempt


class AnswerStream:
    """One attempt's text deltas; afterwards ``usage`` and ``finish_reason`` as the server said."""

    def __init__(self, attempt: Attempt) -> None:
        self._attempt = attempt

    @property
    def usage(self) -> dict[str, int] | None:
        return self._attempt.usage

    @property
    def finish_reason(self) -> str | None:
        return self._attempt.finish_reason

    async def __aiter__(self) -> AsyncIterator[str]:
        async for event in self._attempt.events():
            if type(event) is Delta:
                yield event.text


class LLMClient:
    def __init__(self, model: OpenAIModel) -> None:
        self.model = model

    @classmethod
    def over(cls, model: ModelClient) -> LLMClient:
        if not isinstance(model, OpenAIModel):
            raise TypeError(f"the engine's compatibility shim needs an OpenAIModel, not {type(model)}")
        return cls(model)

    def stream(self, messages: list[dict[str, Any]]) -> AnswerStream:
        return AnswerStream(self.model.attempt(messages))
