"""How servers' errors are named (``bot.model.errors.from_server``), without I/O: each server's own
wording, bounded and redacted messages, and the texts a person and the metrics get."""

from __future__ import annotations

import httpx
import pytest

from bot.errors import (
    TRUNCATED_NOTE,
    ContentFiltered,
    ContextTooLong,
    ModelAuthError,
    ModelBadRequest,
    ModelEndpointNotFound,
    ModelError,
    ModelNotFound,
    ModelOverloaded,
    ModelRateLimited,
    ModelServerError,
    QuotaExceeded,
    user_message,
)
from bot.metrics import Metrics
from bot.model.errors import SERVER_MESSAGE_LIMIT, from_server, server_text


def error(message: str, *, code: object = None, kind: object = None) -> dict[str, object]:
    return {"message": message, "type": kind, "param": None, "code": code}


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (401, error("Incorrect API key provided", code="invalid_api_key"), ModelAuthError),
        (403, error("Project does not have access"), ModelAuthError),
        (429, error("You exceeded your current quota", code="insufficient_quota"), QuotaExceeded),
        (429, error("Rate limit reached for requests", code="rate_limit_exceeded"), ModelRateLimited),
        (404, error("The model `gpt-9` does not exist", code="model_not_found"), ModelNotFound),
        (
            404,
            {"object": "error", "message": "The model `x` does not exist.", "code": 404},
            ModelNotFound,
        ),  # vLLM
        (404, error('model "llama9" not found, try pulling it first'), ModelNotFound),  # Ollama
        (
            400,
            error(
                "{'error': '/chat/completions: Invalid model name passed in model=x.'}",
                code="400",
                kind="None",
            ),
            ModelNotFound,
        ),  # LiteLLM
        (404, error("Invalid URL (POST /v1/chat)"), ModelEndpointNotFound),
        (404, "404 page not found", ModelEndpointNotFound),
        (
            400,
            error("This model's maximum context length is 8192 tokens", code="context_length_exceeded"),
            ContextTooLong,
        ),
        (
            400,
            error("litellm.ContextWindowExceededError: context window exceeded", code="400"),
            ContextTooLong,
        ),
        (
            400,
            error("Requested tokens (9000) exceed context window of 4096"),
            ContextTooLong,
        ),  # llama-cpp-python
        (
            400,
            error("the request exceeds the available context size", kind="exceed_context_size_error"),
            ContextTooLong,
        ),
        (400, error("The response was filtered", code="content_filter"), ContentFiltered),
        (400, error("Unrecognized request argument supplied: foo"), ModelBadRequest),
        (500, error("The server had an error while processing your request."), ModelServerError),
        (502, "<html><body>Bad gateway</body></html>", ModelServerError),
        (503, error("The engine is currently overloaded"), ModelOverloaded),
        (529, error("Overloaded", kind="overloaded_error"), ModelOverloaded),
        (None, error("upstream failed", code="500"), ModelServerError),  # an error event in a stream
        (None, error("slow down", code=429), ModelRateLimited),
        (None, error("Overloaded", kind="overloaded_error"), ModelOverloaded),
        (None, "something broke", ModelServerError),
    ],
)
def test_each_servers_words_are_classified(status: int | None, body: object, cls: type[ModelError]) -> None:
    err = from_server(status, body, httpx.Headers({"x-request-id": "req_1"}))
    assert type(err) is cls
    assert err.server_request_id == "req_1" and err.server_message


def test_the_servers_message_is_one_bounded_redacted_line() -> None:
    key = "sk-proj-abcdefghijklmnop1234"
    text = server_text(f"Invalid key {key}\n\n  for user   xoxb-123-456-abc\t" + "word " * 200, [key])
    assert text is not None and "\n" not in text and "  " not in text
    assert key not in text and "xoxb-123-456-abc" not in text and "[redacted]" in text
    assert len(text) == SERVER_MESSAGE_LIMIT and text.endswith("…")
    assert (
        server_text("{'error': '/chat/completions: Invalid model name'}")
        == "/chat/completions: Invalid model name"
    )
    assert server_text("") is None and server_text(None) is None


def test_a_rate_limit_carries_the_servers_wait() -> None:
    err = from_server(429, error("slow down"), httpx.Headers({"llm_provider-retry-after": "3"}))
    assert isinstance(err, ModelRateLimited) and err.retry_after == 3.0
    assert str(err) == "http 429: slow down"


def test_user_texts_say_what_happened_never_the_servers_words() -> None:
    texts = {
        cls: user_message(from_server(status, error("secret detail"), None), "id")
        for cls, status in [(ModelServerError, 500), (ModelOverloaded, 503), (ModelRateLimited, 429)]
    }
    assert "internal error" in texts[ModelServerError]
    assert "overloaded" in texts[ModelOverloaded] and "rate limit" not in texts[ModelOverloaded]
    assert "rate limiting" in texts[ModelRateLimited]
    assert all("secret detail" not in t and "429" not in t and "500" not in t for t in texts.values())


def test_a_truncated_answer_has_a_note_and_a_counter() -> None:
    assert "cut off" in TRUNCATED_NOTE and "BOT_MAX_ANSWER_TOKENS" in TRUNCATED_NOTE
    metrics = Metrics()
    assert metrics.value("threadline_answers_truncated_total") == 0
    assert b"threadline_answers_truncated_total 0.0" in metrics.render()[0]  # exported from the start
    metrics.answer_truncated()
    assert metrics.value("threadline_answers_truncated_total") == 1
