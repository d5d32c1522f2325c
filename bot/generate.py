"""One answer from the model into a view: retries (tenacity: only retryable errors, Retry-After
honoured, a retried stream replaces the partial text), the context-length trim, the whole-answer
timeout, and the error → note mapping (``bot.errors``)."""

from __future__ import annotations

import asyncio
import logging

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bot.context import Prompt, drop_oldest
from bot.errors import ContextTooLong, EmptyAnswer, ModelError, ModelTimeout, user_message
from bot.jobs import Request
from bot.llm import LLMClient
from bot.metrics import AnswerStats, Metrics
from bot.settings import Settings
from bot.texts import WARNING_PREFIX, retrying_status
from bot.view.base import AnswerView

logger = logging.getLogger(__name__)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ModelError) and exc.retryable


class Generator:
    def __init__(self, *, settings: Settings, llm: LLMClient, metrics: Metrics) -> None:
        self.settings = settings
        self.llm = llm
        self.metrics = metrics

    async def generate(
        self, prompt: Prompt, view: AnswerView, request: Request, stats: AnswerStats | None
    ) -> str | None:
        """Stream the answer into ``view``; returns a note for the user when it failed."""
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                try:
                    await self._with_retries(prompt, view, stats)
                except ContextTooLong:
                    shorter = drop_oldest(prompt)
                    if shorter is None:
                        raise
                    logger.info(
                        "context too long (request %s): retrying with %d fewer turns",
                        request.id,
                        shorter.dropped_turns - prompt.dropped_turns,
                    )
                    view.replace("")
                    await self._with_retries(shorter, view, stats)
                if not view.text.strip():
                    raise EmptyAnswer()  # else the final edit would show the placeholder forever
        except TimeoutError as err:
            self.metrics.model_error(err)
            return WARNING_PREFIX + user_message(
                ModelTimeout("answer", self.settings.timeout_seconds), request.id
            )
        except ModelError as err:
            logger.warning("model error (request %s): %s", request.id, err)
            return WARNING_PREFIX + user_message(err, request.id)
        except Exception as err:
            logger.exception("internal error (request %s)", request.id)
            return WARNING_PREFIX + user_message(err, request.id)
        return None

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > 0:
            return min(float(retry_after), 60.0)
        base = self.settings.retry_base_seconds  # the jitter scales with it too (tests run in ms)
        backoff = wait_exponential_jitter(multiplier=base, jitter=base, max=30.0)
        return float(backoff(state))

    async def _consume(self, prompt: Prompt, view: AnswerView, stats: AnswerStats | None) -> None:
        """One model call: its deltas go to ``view``; its tokens and errors are counted."""
        stream = self.llm.stream(prompt.messages)
        produced = 0
        try:
            async for delta in stream:
                if stats is not None:
                    stats.token()
                produced += len(delta)
                view.append(delta)
        except ModelError as err:
            self.metrics.model_error(err)
            raise
        finally:
            if stats is not None:
                stats.usage(stream.usage, prompt.messages, produced)

    async def _with_retries(self, prompt: Prompt, view: AnswerView, stats: AnswerStats | None) -> None:
        attempts = self.settings.max_attempts

        def before_sleep(state: RetryCallState) -> None:
            view.progress(retrying_status(state.attempt_number + 1, attempts), done=False)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=self.wait,
            retry=retry_if_exception(_is_retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    view.replace("")  # a retried stream replaces the partial text, never appends
                await self._consume(prompt, view, stats)
                view.progress("", done=True)
