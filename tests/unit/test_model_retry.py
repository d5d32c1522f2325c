"""The model's retry policy (``bot.model.retry``), without I/O: which errors are tried again, how long
it waits (the server's own wait, LiteLLM's forwarded one, else backoff within bounds), how often."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from bot.errors import (
    ContentFiltered,
    ContextTooLong,
    EmptyAnswer,
    MalformedReply,
    ModelAuthError,
    ModelBadRequest,
    ModelEndpointNotFound,
    ModelError,
    ModelNotFound,
    ModelOverloaded,
    ModelRateLimited,
    ModelServerError,
    ModelTimeout,
    ModelUnavailable,
    ModelUnreachable,
    QuotaExceeded,
    StreamCut,
)
from bot.model.retry import MAX_BACKOFF, MAX_RETRY_AFTER, RetryPolicy, is_retryable, retry_after

RETRIED = [
    ModelUnavailable("read timed out"),
    ModelUnreachable("connection refused"),
    ModelRateLimited("http 429"),
    ModelOverloaded("http 503"),
    ModelServerError("http 500"),
    StreamCut("stream ended before the answer was complete"),
    ModelTimeout("first token", 30),
]
NOT_RETRIED = [
    ModelAuthError("http 401"),
    QuotaExceeded("http 429"),
    ModelNotFound("http 404"),
    ModelEndpointNotFound("http 404"),
    ContextTooLong("http 400"),
    ContentFiltered("finish_reason content_filter"),
    MalformedReply("a stream line that is not JSON"),
    ModelBadRequest("http 400"),
    EmptyAnswer(),
    ModelTimeout("idle", 30),
    ModelTimeout("answer", 120),
    ValueError("not a model error"),
]


@pytest.mark.parametrize("err", RETRIED, ids=lambda e: f"{type(e).__name__}")
def test_transient_errors_are_retried(err: ModelError) -> None:
    assert is_retryable(err)
    assert RetryPolicy(attempts=3, base=1.0).next_wait(1, err) is not None


@pytest.mark.parametrize("err", NOT_RETRIED, ids=lambda e: f"{type(e).__name__}-{e}")
def test_errors_that_would_fail_again_are_not(err: BaseException) -> None:
    assert not is_retryable(err)
    assert RetryPolicy(attempts=3, base=1.0).next_wait(1, err) is None


def test_errors_only_an_admin_can_fix_say_so() -> None:
    admin = {
        ModelAuthError,
        QuotaExceeded,
        ModelNotFound,
        ModelEndpointNotFound,
        ModelBadRequest,
        ContextTooLong,
    }
    for err in [*RETRIED, *NOT_RETRIED]:
        if isinstance(err, ModelError):
            assert err.fixable_by_retry is (type(err) not in admin), type(err)


def test_attempts_are_counted_from_one_and_bounded() -> None:
    policy = RetryPolicy(attempts=3, base=0.01)
    err = ModelServerError("http 500")
    assert policy.next_wait(1, err) is not None  # before attempt 2
    assert policy.next_wait(2, err) is not None  # before attempt 3
    assert policy.next_wait(3, err) is None  # 3 made: give up
    assert RetryPolicy(attempts=1, base=0.01).next_wait(1, err) is None  # BOT_MAX_ATTEMPTS=1: behind a proxy
    assert RetryPolicy(attempts=0, base=0.01).attempts == 1


def test_backoff_is_exponential_with_a_jitter_of_at_most_the_base() -> None:
    policy = RetryPolicy(attempts=10, base=0.05)
    err = ModelOverloaded("http 503")
    first = [policy.next_wait(1, err) or 0 for _ in range(200)]
    third = [policy.next_wait(3, err) or 0 for _ in range(200)]
    assert all(0.05 <= w <= 0.1 for w in first), (min(first), max(first))
    assert all(0.2 <= w <= 0.25 for w in third), (min(third), max(third))
    assert len(set(first)) > 1  # jittered
    late = RetryPolicy(attempts=30, base=1.0)
    assert all((late.next_wait(20, err) or 0) <= MAX_BACKOFF for _ in range(50))


def test_the_servers_wait_wins_and_is_capped() -> None:
    policy = RetryPolicy(attempts=3, base=0.05)
    assert policy.next_wait(1, ModelRateLimited("http 429", retry_after=2.5)) == 2.5
    assert policy.next_wait(1, ModelOverloaded("http 503", retry_after=3600)) == MAX_RETRY_AFTER
    # A wait of 0 means "at once": the backoff applies (never a tight loop).
    assert 0.05 <= (policy.next_wait(1, ModelRateLimited("http 429", retry_after=0)) or 0) <= 0.1
    # An error not retried stays so, whatever wait the server asked.
    assert policy.next_wait(1, QuotaExceeded("http 429", retry_after=1)) is None


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "1.5"}, 1.5),  # httpx's headers are case-insensitive
        ({"retry-after-ms": "250"}, 0.25),
        ({"llm_provider-retry-after": "12"}, 12.0),  # LiteLLM forwarding its upstream's Retry-After
        ({"retry-after-ms": "100", "retry-after": "9", "llm_provider-retry-after": "30"}, 0.1),
        ({"retry-after": "soon", "llm_provider-retry-after": "4"}, 4.0),  # an unreadable one is skipped
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(httpx.Headers(headers)) == seconds


def test_retry_after_as_an_http_date() -> None:
    now = 1_700_000_000.0
    assert (
        retry_after(httpx.Headers({"retry-after": email.utils.formatdate(now + 20, usegmt=True)}), now=now)
        == 20
    )
    assert (
        retry_after(httpx.Headers({"retry-after": email.utils.formatdate(now - 20, usegmt=True)}), now=now)
        == 0
    )
    assert retry_after(None) is None
