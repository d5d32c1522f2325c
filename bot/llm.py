"""The model boundary: Chat Completions streaming through the ``openai`` package's ``AsyncOpenAI``.

Works with OpenAI and any server that speaks the same API (vLLM, Ollama, LiteLLM, Azure's
compatible endpoint). The client has ``max_retries=0``: retries belong to one layer only (tenacity,
in ``bot.engine``). Exceptions from ``openai``/``httpx`` are translated here, once, into
``bot.errors.ModelError`` subclasses (like httpx's ``map_httpcore_exceptions``).

Timeouts are enforced on the wait for each chunk, not when a chunk arrives, so a stalled stream
times out on time: ``first_token`` until the first content, ``idle`` between chunks afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI

from bot.errors import (
    ContentFiltered,
    ContextTooLong,
    ModelAuthError,
    ModelBadRequest,
    ModelError,
    ModelNotFound,
    ModelTimeout,
    ModelUnavailable,
    ModelUnreachable,
)

logger = logging.getLogger(__name__)

_CONTEXT_HINTS = ("context_length_exceeded", "context length", "maximum context", "too many tokens")


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    for header in ("retry-after-ms", "retry-after"):
        value = response.headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        return seconds / 1000 if header.endswith("ms") else seconds
    return None


def translate(err: BaseException) -> ModelError:
    """Map an exception raised by the ``openai`` package (or httpx under it) to a ``ModelError``."""
    if isinstance(err, ModelError):
        return err
    if isinstance(err, openai.APITimeoutError):
        return ModelUnavailable("read timeout")
    if isinstance(err, openai.APIConnectionError | httpx.TransportError):
        return ModelUnreachable(type(err).__name__)
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        code = str(getattr(err, "code", "") or "")
        text = f"{code} {err.message}".lower()
        retry_after = _retry_after(err.response)
        if status == 429 or status >= 500:
            return ModelUnavailable(f"http {status}", retry_after=retry_after)
        if status in (401, 403):
            return ModelAuthError(f"http {status}")
        if status == 404:
            return ModelNotFound(f"http {status}")
        if any(hint in text for hint in _CONTEXT_HINTS):
            return ContextTooLong(f"http {status}")
        if "content_filter" in text or "content management policy" in text:
            return ContentFiltered(f"http {status}")
        return ModelBadRequest(f"http {status}")
    if isinstance(err, openai.APIError):  # an error event inside the stream
        return ModelUnavailable("stream error")
    return ModelBadRequest(type(err).__name__)


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    try:
        yield
    except (openai.OpenAIError, httpx.HTTPError) as err:
        raise translate(err) from err


class AnswerStream:
    """One streamed completion. Iterate it for content deltas; afterwards ``usage`` and
    ``finish_reason`` hold what the server reported."""

    def __init__(self, client: LLMClient, messages: list[dict[str, str]]) -> None:
        self._client = client
        self._messages = messages
        self.usage: dict[str, int] | None = None
        self.finish_reason: str | None = None
        self.first_token_at: float | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str]:
        client = self._client
        try:
            with mapped_errors():
                # The first-token timeout also covers the wait for the response headers.
                opened = client.open(self._messages)
                response, closer = await asyncio.wait_for(opened, client.first_token_timeout)
        except TimeoutError:
            raise ModelTimeout("first token", client.first_token_timeout) from None
        loop = asyncio.get_running_loop()
        got_content = False
        try:
            lines = aiter(response.iter_lines())
            async with asyncio.timeout(None) as deadline:
                while True:
                    wait = client.idle_timeout if got_content else client.first_token_timeout
                    deadline.reschedule(loop.time() + wait)
                    try:
                        with mapped_errors():
                            line = await anext(lines)
                    except StopAsyncIteration:
                        break
                    if not line.startswith("data:"):
                        continue  # blank separators, comments, "event:" lines
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    deltas = self._parse(data)
                    if deltas:
                        if not got_content:
                            self.first_token_at = time.monotonic()
                            got_content = True
                        deadline.reschedule(None)  # the consumer's time is not the model's
                        for delta in deltas:
                            yield delta
        except TimeoutError:
            phase = "idle" if got_content else "first token"
            raise ModelTimeout(
                phase, client.idle_timeout if got_content else client.first_token_timeout
            ) from None
        finally:
            with contextlib.suppress(Exception):
                await closer()
        if self.finish_reason == "content_filter":
            raise ContentFiltered("finish_reason content_filter")

    def _parse(self, data: str) -> list[str]:
        """One Chat Completions chunk (plain JSON, no per-chunk model objects: this is the hot path)."""
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ModelUnavailable("malformed stream chunk") from None
        if not isinstance(chunk, dict):
            return []
        if chunk.get("error"):
            raise ModelUnavailable("error event in the stream")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = {
                "prompt_tokens": int(usage.get("prompt_tokens") or 0),
                "completion_tokens": int(usage.get("completion_tokens") or 0),
            }
        deltas: list[str] = []
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
            content = (choice.get("delta") or {}).get("content")
            if content:
                deltas.append(content)
        return deltas


class LLMClient:
    """One ``AsyncOpenAI`` client for the life of the process."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        first_token_timeout: float,
        idle_timeout: float,
        max_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self.max_tokens = max_tokens
        self._usage_supported = True
        self._client = AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=httpx.Timeout(connect=10.0, read=None, write=30.0, pool=30.0),
        )

    async def close(self) -> None:
        await self._client.close()

    def stream(self, messages: list[dict[str, str]]) -> AnswerStream:
        return AnswerStream(self, messages)

    async def reachable(self, *, timeout: float = 5.0) -> None:
        """Readiness: ``GET /models`` answers. Raises a ``ModelError`` when the server cannot be
        reached or refuses the key; a server without that endpoint (404) counts as reachable."""
        try:
            with mapped_errors():
                await asyncio.wait_for(self._client.models.list(), timeout)
        except TimeoutError:
            raise ModelTimeout("reachability check", timeout) from None
        except (ModelNotFound, ModelBadRequest):
            return

    async def probe(self, *, timeout: float = 15.0) -> str:
        """``bot check``: a one-token, non-streaming completion with the configured model. Returns
        the model name the server reports; raises a ``ModelError`` when it fails."""
        try:
            with mapped_errors():
                response = await asyncio.wait_for(
                    self._client.chat.completions.create(
                        model=self.model, messages=[{"role": "user", "content": "ping"}], max_tokens=1
                    ),
                    timeout,
                )
        except TimeoutError:
            raise ModelTimeout("check", timeout) from None
        return str(getattr(response, "model", "") or self.model)

    async def open(self, messages: list[dict[str, str]]) -> tuple[Any, Callable[[], Awaitable[None]]]:
        """Start a streamed completion; returns the raw streaming response (the SSE lines are parsed
        by ``AnswerStream``, without building an SDK model per chunk) and a function that closes it.
        ``stream_options.include_usage`` is sent while the server accepts it; a server that refuses
        it (400 naming it) is asked again without. HTTP errors raise the SDK's exceptions."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True}
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self._usage_supported:
            try:
                return await self._start(kwargs | {"stream_options": {"include_usage": True}})
            except openai.BadRequestError as err:
                if "stream_options" not in str(err.message):
                    raise
                logger.info("model server refuses stream_options; streaming without usage")
                self._usage_supported = False
        return await self._start(kwargs)

    async def _start(self, kwargs: dict[str, Any]) -> tuple[Any, Callable[[], Awaitable[None]]]:
        manager = self._client.chat.completions.with_streaming_response.create(**kwargs)
        response = await manager.__aenter__()

        async def close() -> None:
            await manager.__aexit__(None, None, None)

        return response, close
