"""``bot.llm`` against the fake OpenAI: the stream's timeouts (keep-alives are not progress), a stream
that ends without finishing, and the parameters reasoning models refuse."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from bot.errors import ModelTimeout, ModelUnavailable
from bot.llm import LLMClient
from tests.fakes.openai import FakeOpenAI, Reply

MESSAGES = [{"role": "user", "content": "hi"}]


def client(
    model: FakeOpenAI, *, first: float = 5.0, idle: float = 5.0, max_tokens: int | None = None
) -> LLMClient:
    return LLMClient(
        api_key=model.api_key,
        base_url=model.base_url,
        model="fake-model",
        first_token_timeout=first,
        idle_timeout=idle,
        max_tokens=max_tokens,
    )


async def drain(llm: LLMClient) -> list[str]:
    async with asyncio.timeout(10):  # a timeout that never fires fails the test instead of hanging it
        return [delta async for delta in llm.stream(MESSAGES)]


async def test_keepalives_do_not_hold_off_the_first_token_timeout(model: FakeOpenAI) -> None:
    # Headers after 0.5 s, then only ": ping" comments, blank lines and empty deltas every 0.2 s.
    model.script(Reply(chunks=[], first_delay=0.5, stall_after=0, keepalive=0.2))
    llm = client(model, first=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(ModelTimeout) as err:
            await drain(llm)
    finally:
        await llm.close()
    elapsed = time.monotonic() - started
    assert err.value.phase == "first token" and err.value.retryable
    # Absolute from the request: not 0.5 s (headers) + 1 s again, and not restarted by each ping.
    assert 0.95 <= elapsed < 1.4, elapsed


async def test_keepalives_do_not_hold_off_the_idle_timeout(model: FakeOpenAI) -> None:
    model.script(Reply.text("some words first", stall_after=2, keepalive=0.2))
    llm = client(model, idle=1.0)
    got: list[str] = []
    last = 0.0
    try:
        with pytest.raises(ModelTimeout) as err:
            async with asyncio.timeout(10):
                async for delta in llm.stream(MESSAGES):
                    got.append(delta)
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
                async for delta in llm.stream(MESSAGES):
                    got.append(delta)
    finally:
        await llm.close()
    assert err.value.retryable
    assert "".join(got) == "one two"
    assert model.cut_streams == 1


async def test_a_complete_stream_is_not_an_error(model: FakeOpenAI) -> None:
    model.script(Reply.text("all of it", delay=0.01))
    llm = client(model, first=1.0, idle=1.0)
    try:
        stream = llm.stream(MESSAGES)
        assert "".join([d async for d in stream]) == "all of it"
    finally:
        await llm.close()
    assert stream.finish_reason == "stop" and stream.usage is not None


async def test_probe_asks_again_with_max_completion_tokens_when_max_tokens_is_refused(
    model: FakeOpenAI,
) -> None:
    model.unsupported_params = {"max_tokens"}  # a reasoning model
    llm = client(model)
    try:
        assert await llm.probe() == "fake-model"
        assert await llm.probe() == "fake-model"  # remembered: no refused request the second time
    finally:
        await llm.close()
    first, second, third = model.requests
    assert first["max_tokens"] == 1
    assert second["max_completion_tokens"] == 1 and "max_tokens" not in second
    assert third["max_completion_tokens"] == 1 and "max_tokens" not in third


async def test_probe_still_sends_max_tokens_to_models_that_take_it(model: FakeOpenAI) -> None:
    llm = client(model)
    try:
        await llm.probe()
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
