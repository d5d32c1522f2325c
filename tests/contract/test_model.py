"""``bot.model``'s OpenAI-compatible client against the fake OpenAI: the stream's timeouts (keep-alives
are not progress), a stream that ends without finishing, the parameters reasoning models refuse, and
what each server behaviour of issue 15 becomes (a ``Finished``, a used answer, or the right error)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import pytest

from bot.errors import (
    ContextTooLong,
    MalformedReply,
    ModelAuthError,
    ModelError,
    ModelNotFound,
    ModelOverloaded,
    ModelRateLimited,
    ModelServerError,
    ModelTimeout,
    ModelUnavailable,
    ModelUnreachable,
    user_message,
)
from bot.model import Delta, Finished, ModelEvent, Retrying
from bot.model.openai import OpenAIModel
from sandbox.runner import free_port
from tests.fakes.openai import FakeOpenAI, Reply

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]


def client(
    model: FakeOpenAI,
    *,
    first: float = 5.0,
    idle: float = 5.0,
    max_tokens: int | None = None,
    attempts: int = 1,
    base: float = 0.001,
    base_url: str | None = None,
) -> OpenAIModel:
    return OpenAIModel(
        api_key=model.api_key,
        base_url=base_url or model.base_url,
        model="fake-model",
        first_token_timeout=first,
        idle_timeout=idle,
        max_tokens=max_tokens,
        attempts=attempts,
        retry_base=base,
    )


async def events(llm: OpenAIModel) -> list[ModelEvent]:
    async with asyncio.timeout(10):  # a timeout that never fires fails the test instead of hanging it
        return [event async for event in llm.answer(MESSAGES)]


async def drain(llm: OpenAIModel) -> list[str]:
    return [e.text for e in await events(llm) if isinstance(e, Delta)]


async def test_keepalives_do_not_hold_off_the_first_token_timeout(model: FakeOpenAI) -> None:
    # Headers after 0.9 s, then only ": ping" comments, blank lines and empty deltas every 0.2 s.
    model.script(Reply(chunks=[], first_delay=0.9, stall_after=0, keepalive=0.2))
    llm = client(model, first=1.0)
    try:
        with pytest.raises(ModelTimeout) as err:
            await drain(llm)
    finally:
        await llm.close()
    elapsed = time.monotonic() - model.request_times[0]  # from the request's arrival
    assert err.value.phase == "first token" and err.value.retryable
    # Absolute from the request: about 1 s, not 0.9 s (headers) + 1 s again (1.9 s), and not restarted
    # by each ping (never). The bound leaves a loaded machine 0.6 s (a run in parallel took 0.54 s more).
    assert 0.9 <= elapsed < 1.6, elapsed


async def test_keepalives_do_not_hold_off_the_idle_timeout(model: FakeOpenAI) -> None:
    model.script(Reply.text("some words first", stall_after=2, keepalive=0.2))
    llm = client(model, idle=1.0)
    got: list[str] = []
    last = 0.0
    try:
        with pytest.raises(ModelTimeout) as err:
            async with asyncio.timeout(10):
                async for event in llm.answer(MESSAGES):
                    if isinstance(event, Delta):
                        got.append(event.text)
                        last = time.monotonic()
    finally:
        await llm.close()
    idle = time.monotonic() - last
    assert err.value.phase == "idle" and not err.value.retryable
    assert "".join(got) == "some words"
    assert 0.95 <= idle < 1.4, idle


async def test_a_reasoning_model_thinking_is_not_a_stall(model: FakeOpenAI) -> None:
    # 2 s of reasoning deltas (not part of the answer) before the first content, with a 1 s
    # first-token and idle timeout: the model is at work, so neither fires.
    model.script(dataclasses.replace(Reply.text("the answer", delay=0.25), reasoning=["hmm"] * 8))
    llm = client(model, first=1.0, idle=1.0)
    try:
        assert "".join(await drain(llm)) == "the answer"
    finally:
        await llm.close()


async def test_a_last_line_without_its_newline_still_counts(model: FakeOpenAI) -> None:
    reply = dataclasses.replace(Reply.text("all of it"), final_newline=False)
    model.script(reply)
    llm = client(model)
    try:
        assert "".join(await drain(llm)) == "all of it"  # finished, not taken for a cut stream
    finally:
        await llm.close()


async def test_a_clean_close_without_done_or_finish_is_a_cut_stream(model: FakeOpenAI) -> None:
    model.script(Reply.text("one two three four", close_after=2))
    llm = client(model)
    got: list[str] = []
    try:
        with pytest.raises(ModelUnavailable) as err:
            async with asyncio.timeout(10):
                async for event in llm.answer(MESSAGES):
                    if isinstance(event, Delta):
                        got.append(event.text)
    finally:
        await llm.close()
    assert err.value.retryable
    assert "".join(got) == "one two"
    assert model.cut_streams == 1


async def test_a_complete_stream_is_not_an_error(model: FakeOpenAI) -> None:
    model.script(Reply.text("all of it", delay=0.01))
    llm = client(model, first=1.0, idle=1.0)
    try:
        got = await events(llm)
    finally:
        await llm.close()
    assert "".join(e.text for e in got if isinstance(e, Delta)) == "all of it"
    finished = got[-1]
    assert isinstance(finished, Finished)
    assert finished.finish_reason == "stop" and finished.completion_tokens is not None


async def test_probe_asks_again_with_max_completion_tokens_when_max_tokens_is_refused(
    model: FakeOpenAI,
) -> None:
    model.unsupported_params = {"max_tokens"}  # a reasoning model
    llm = client(model)
    try:
        assert await llm.probe(timeout=15) == "fake-model"
        assert await llm.probe(timeout=15) == "fake-model"  # remembered: no refused request the second time
    finally:
        await llm.close()
    first, second, third = model.requests
    assert first["max_tokens"] == 1
    assert second["max_completion_tokens"] == 1 and "max_tokens" not in second
    assert third["max_completion_tokens"] == 1 and "max_tokens" not in third


async def test_probe_still_sends_max_tokens_to_models_that_take_it(model: FakeOpenAI) -> None:
    llm = client(model)
    try:
        await llm.probe(timeout=15)
    finally:
        await llm.close()
    assert len(model.requests) == 1 and model.requests[0]["max_tokens"] == 1


async def test_streaming_answer_limit_switches_to_max_completion_tokens(model: FakeOpenAI) -> None:
    model.unsupported_params = {"max_tokens"}
    model.script(Reply.text("a b c d e f"))
    llm = client(model, max_tokens=3)
    try:
        assert "".join(await drain(llm)) == "a b c"
    finally:
        await llm.close()
    assert [("max_tokens" in r, r.get("max_completion_tokens")) for r in model.requests] == [
        (True, None),
        (False, 3),
    ]


# -- issue 15: what real servers do ---------------------------------------------------------------

LITELLM_UNKNOWN_MODEL = (
    "Invalid model name passed in model=fake-model. Call `/v1/models` to view available models for your key."
)


async def failure(llm: OpenAIModel) -> tuple[ModelError, list[ModelEvent]]:
    got: list[ModelEvent] = []
    try:
        with pytest.raises(ModelError) as err:
            async with asyncio.timeout(10):
                async for event in llm.answer(MESSAGES):
                    got.append(event)
    finally:
        await llm.close()
    return err.value, got


async def test_an_answer_cut_at_the_length_limit_finishes_with_length_and_is_logged(
    model: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    model.script(Reply.text("one two three four five six"))
    llm = client(model, max_tokens=3)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.model"):
            got = await events(llm)
    finally:
        await llm.close()
    assert "".join(e.text for e in got if isinstance(e, Delta)) == "one two three"
    assert got[-1] == Finished(finish_reason="length", prompt_tokens=5, completion_tokens=3)
    assert any(
        "answer cut off" in r.getMessage() and "BOT_MAX_ANSWER_TOKENS 3" in r.getMessage()
        for r in caplog.records
    )


async def test_a_length_stop_before_any_text_is_a_context_too_long(model: FakeOpenAI) -> None:
    # llama.cpp answers a prompt that fills its context with an empty 200 stream ending "length".
    model.script(
        Reply(chunks=[], finish_reason="length", usage={"prompt_tokens": 4096, "completion_tokens": 0})
    )
    err, _ = await failure(client(model, attempts=3))
    assert isinstance(err, ContextTooLong)
    assert len(model.requests) == 1  # raised for the caller to trim, not retried


async def test_litellm_unknown_model_keeps_the_servers_words_and_is_for_an_admin(model: FakeOpenAI) -> None:
    model.script(Reply.litellm_error(400, LITELLM_UNKNOWN_MODEL, wrapped=True))
    err, _ = await failure(client(model, attempts=3))
    assert isinstance(err, ModelNotFound) and not err.retryable and not err.fixable_by_retry
    assert err.status == 400
    assert err.server_message == f"/chat/completions: {LITELLM_UNKNOWN_MODEL}"
    assert err.server_request_id is not None and err.server_request_id.startswith("req_")
    assert LITELLM_UNKNOWN_MODEL in str(err) and err.server_request_id in str(err)
    assert "OPENAI_MODEL" in user_message(err, "x")
    assert len(model.requests) == 1


@pytest.mark.parametrize(
    "reply",
    [
        Reply.error(400, "context_length_exceeded"),  # OpenAI
        Reply.litellm_error(
            400,
            "litellm.ContextWindowExceededError: litellm.BadRequestError: ContextWindowExceededError: "
            "OllamaException - context window exceeded",
        ),
        Reply(  # llama.cpp's server
            chunks=[],
            status=400,
            error_body={
                "error": {
                    "message": "the request exceeds the available context size, try increasing it",
                    "type": "exceed_context_size_error",
                    "code": 400,
                }
            },
        ),
    ],
    ids=["openai", "litellm", "llama.cpp"],
)
async def test_context_too_long_in_each_servers_words(model: FakeOpenAI, reply: Reply) -> None:
    model.script(reply)
    err, _ = await failure(client(model, attempts=3))
    assert isinstance(err, ContextTooLong) and err.server_message
    assert len(model.requests) == 1


async def test_an_invalid_key_names_the_key_without_showing_it(model: FakeOpenAI) -> None:
    key = model.api_key + "-and-more-of-it"
    echo = f"Authentication Error, Invalid proxy server token passed. Received API Key = {key}\n" + "x" * 600
    model.script(Reply.litellm_error(401, echo))
    llm = client(model, attempts=3)
    llm.secrets = (key,)
    err, _ = await failure(llm)
    assert isinstance(err, ModelAuthError) and not err.fixable_by_retry
    assert err.server_message is not None
    assert key not in str(err) and "\n" not in str(err) and len(err.server_message) <= 300
    assert err.server_message.startswith("Authentication Error, Invalid proxy server token passed.")
    assert len(model.requests) == 1


@pytest.mark.parametrize(
    ("reply", "cls", "words"),
    [
        (Reply.error(500), ModelServerError, "internal error"),
        (Reply.error(503), ModelOverloaded, "overloaded"),
        (Reply.error(529), ModelOverloaded, "overloaded"),
        (Reply.error(429), ModelRateLimited, "rate limiting"),
    ],
    ids=["500", "503", "529", "429"],
)
async def test_each_persistent_http_error_is_named_for_what_it_is(
    model: FakeOpenAI, reply: Reply, cls: type[ModelError], words: str
) -> None:
    model.script(*[reply] * 3)
    err, got = await failure(client(model, attempts=3))
    assert type(err) is cls and err.retryable
    assert words in user_message(err, "x")
    assert [(e.attempt, e.attempts, type(e.error)) for e in got if isinstance(e, Retrying)] == [
        (2, 3, cls),
        (3, 3, cls),
    ]
    assert len(model.requests) == 3


async def test_a_refused_connection_is_called_refused(model: FakeOpenAI) -> None:
    port = free_port()  # nothing listens there
    llm = client(model, base_url=f"http://127.0.0.1:{port}/v1", attempts=2)
    try:
        with pytest.raises(ModelUnreachable) as pinged:
            await llm.ping(timeout=5)
    finally:
        await llm.close()
    assert str(pinged.value) == f"connection refused (127.0.0.1:{port})"
    err, got = await failure(client(model, base_url=f"http://127.0.0.1:{port}/v1", attempts=2))
    assert isinstance(err, ModelUnreachable) and "connection refused" in str(err)
    assert [type(e) for e in got] == [Retrying]


async def test_an_error_event_in_the_stream_is_the_servers_error(model: FakeOpenAI) -> None:
    error = {
        "error": {"message": "litellm.RateLimitError: upstream said slow down", "type": None, "code": "429"}
    }
    model.script(
        Reply.text("the first words", error_event=error),
        Reply.text("the whole answer"),
    )
    got = await events(client(model, attempts=2))
    retry = next(e for e in got if isinstance(e, Retrying))
    assert isinstance(retry.error, ModelRateLimited)
    assert retry.error.server_message == "litellm.RateLimitError: upstream said slow down"
    texts = [e.text if isinstance(e, Delta) else type(e).__name__ for e in got]
    # The partial text, then the retry (the partial text is void), then the whole answer.
    assert "".join(t for t in texts[: texts.index("Retrying")]) == "the first words"
    assert "".join(t for t in texts[texts.index("Retrying") + 1 : -1]) == "the whole answer"


async def test_an_unclassified_error_event_is_a_server_error_not_an_overload(model: FakeOpenAI) -> None:
    model.script(Reply.text("partial", error_event={"error": {"message": "upstream connection lost"}}))
    err, _ = await failure(client(model))
    assert isinstance(err, ModelServerError)
    assert "internal error" in user_message(err, "x") and "overloaded" not in user_message(err, "x")
    assert err.server_message == "upstream connection lost"


async def test_a_garbage_data_line_is_a_malformed_reply_and_not_retried(model: FakeOpenAI) -> None:
    model.script(*[Reply.text("words", raw=["<html>502 Bad Gateway</html>"])] * 3)
    err, got = await failure(client(model, attempts=3))
    assert isinstance(err, MalformedReply) and not err.retryable
    assert err.server_message == "<html>502 Bad Gateway</html>"
    assert "couldn't read" in user_message(err, "x")
    assert len(model.requests) == 1 and not any(isinstance(e, Retrying) for e in got)


async def test_a_server_that_ignores_stream_true_is_answered_with_its_completion(model: FakeOpenAI) -> None:
    model.script(Reply.text("a whole answer at once", ignore_stream=True))
    got = await events(client(model, attempts=3))
    assert got == [
        Delta("a whole answer at once"),
        Finished(finish_reason="stop", prompt_tokens=5, completion_tokens=5),
    ]
    assert len(model.requests) == 1 and model.requests[0]["stream"] is True


async def test_litellms_forwarded_retry_after_is_honoured(model: FakeOpenAI) -> None:
    limited = Reply.litellm_error(
        429, "litellm.RateLimitError: slow down", headers={"llm_provider-retry-after": "0.5"}
    )
    model.script(limited, Reply.text("after waiting"))
    got = await events(client(model, attempts=2, base=0.001))
    retry = next(e for e in got if isinstance(e, Retrying))
    assert retry.wait == 0.5 and retry.error.retry_after == 0.5
    assert model.request_times[1] - model.request_times[0] >= 0.5
