"""When a failed model call is tried again, and after how long (tenacity's strategies, no I/O).

- Which errors: those marked ``retryable`` (``bot.errors``): a refused or lost connection, a cut
  stream, 429, 5xx, an error event in the stream, a first-token timeout. Not: a wrong key, model or
  address, a context too long (the caller trims instead), a malformed reply, an idle or answer timeout.
- How long: the server's own wait when it says one (``Retry-After`` in seconds or as an HTTP date,
  ``retry-after-ms``, and LiteLLM's ``llm_provider-retry-after``, which forwards the upstream
  provider's), at most ``MAX_RETRY_AFTER``; else exponential backoff from ``base`` with a jitter of up
  to ``base`` (so tests that set a base of milliseconds wait milliseconds), at most ``MAX_BACKOFF``.
- How often: ``attempts`` in all (``BOT_MAX_ATTEMPTS``). Behind a proxy that retries by itself
  (LiteLLM does), set it to 1: each attempt here is several upstream.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bot.errors import ModelError

MAX_RETRY_AFTER = 60.0  # a longer wait than this is not worth holding an answer for
MAX_BACKOFF = 30.0

# Checked in this order: the most precise first.
RETRY_AFTER_HEADERS = ("retry-after-ms", "retry-after", "llm_provider-retry-after")


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ModelError) and exc.retryable


def retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """The wait a server asks for, in seconds; ``None`` when it asks none (or nothing readable).
    ``headers`` is a case-insensitive mapping (httpx's, aiohttp's) or a dict with lower-case keys."""
    if headers is None:
        return None
    for name in RETRY_AFTER_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        seconds = _seconds(value.strip(), now=now)
        if seconds is None:
            continue
        return seconds / 1000 if name == "retry-after-ms" else seconds
    return None


def _seconds(value: str, *, now: float | None) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)  # an HTTP date
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)  # a date in the past: at once


class RetryPolicy:
    """``next_wait(attempt, error)``: the seconds to wait before attempt ``attempt + 1``, or ``None``
    to give up and raise ``error``. Built from tenacity's stop, retry and wait strategies."""

    def __init__(self, *, attempts: int, base: float) -> None:
        self.attempts = max(1, attempts)
        self.base = base
        self._backoff = wait_exponential_jitter(multiplier=base, jitter=base, max=MAX_BACKOFF)
        self._tenacity = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            retry=retry_if_exception(is_retryable),
            wait=self._wait,
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = getattr(exc, "retry_after", None)
        if isinstance(asked, int | float) and asked > 0:
            return min(float(asked), MAX_RETRY_AFTER)
        return float(self._backoff(state))

    def next_wait(self, attempt: int, error: BaseException) -> float | None:
        state = RetryCallState(self._tenacity, None, (), {})
        state.attempt_number = attempt
        state.set_exception((type(error), error, error.__traceback__))
        if not self._tenacity.retry(state) or self._tenacity.stop(state):
            return None
        return self._tenacity.wait(state)
