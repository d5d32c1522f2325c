"""The model boundary: Chat Completions streaming through the ``openai`` package's ``AsyncOpenAI``.

Works with OpenAI and any server that speaks the same API (vLLM, Ollama, LiteLLM, Azure's
compatible endpoint). The client has ``max_retries=0``: retries belong to one layer only (tenacity,
in ``bot.engine``). Exceptions from ``openai``/``httpx`` are translated here, once, into
``bot.errors.ModelError`` subclasses (like httpx's ``map_httpcore_exceptions``).

Timeouts are enforced on the wait for each chunk, not when a chunk arrives, so a stalled stream
times out on time: ``first_token`` is absolute from the request's start (headers included) until the
first content, ``idle`` counts from the last chunk that carried something (content, usage, a
finish_reason); keep-alive comments, blank lines and empty deltas move neither. A first-token timeout
is retryable (nothing was shown yet); an idle one is not. A stream that closes without ``[DONE]`` and
without a finish_reason was cut: ``ModelUnavailable``, retried like a dropped connection.
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
from openai import AsyncOpenAI, DefaultAioHttpClient

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
    cause = err.__cause__ or err.__context__
    if isinstance(err, httpx.ConnectError | httpx.ConnectTimeout) or isinstance(
        cause, httpx.ConnectError | httpx.ConnectTimeout
    ):
        # No connection at all (the aiohttp transport reports a refused connection as a connect
        # timeout): the server is unreachable, whatever the SDK calls it.
        return ModelUnreachable(type(cause or err).__name__)
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


class _StreamDeadline:
    """The first-token and idle deadlines of one stream, enforced lazily. A chunk that carries
    something only records the time (``alive``); one timer, armed at the deadline, re-arms itself
    when it finds the deadline has moved and expires the stream's ``asyncio.timeout`` when it has
    not. So a stalled stream times out on time (the timer does not wait for a chunk), and the hot
    path schedules no timer per chunk."""

    def __init__(self, loop: asyncio.AbstractEventLoop, first_deadline: float, idle: float) -> None:
        self._loop = loop
        self._first = first_deadline
        self._idle = idle
        self.alive_at: float | None = None  # the last chunk with content, usage or a finish_reason
        self.suspended = False  # True while the consumer handles a delta
        self._timeout: asyncio.Timeout | None = None
        self._handle: asyncio.TimerHandle | None = None

    def due(self) -> float:
        return self._first if self.alive_at is None else self.alive_at + self._idle

    def alive(self) -> None:
        self.alive_at = self._loop.time()
        handle = self._handle
        if handle is not None and handle.when() > self.alive_at + self._idle:
            # The deadline moved earlier (the first token's deadline was further off than an
            # idle gap): re-arm. Afterwards it only moves later, which the timer finds by itself.
            handle.cancel()
            self._handle = self._loop.call_at(self.alive_at + self._idle, self._check)

    def arm(self, timeout: asyncio.Timeout) -> None:
        self._timeout = timeout
        self._handle = self._loop.call_at(self.due(), self._check)

    def _check(self) -> None:
        now = self._loop.time()
        due = self.due()
        if self.suspended:
            due = max(due, now + self._idle)
        if now < due:
            self._handle = self._loop.call_at(due, self._check)
            return
        self._handle = None
        if self._timeout is not None:
            self._timeout.reschedule(now)  # expires: the stream's wait raises TimeoutError

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


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
        loop = asyncio.get_running_loop()
        # The first-token deadline is absolute from the request's start: it covers the response
        # headers too, and lines without content (": ping" keep-alives, blank lines, empty deltas)
        # do not move it.
        first_deadline = loop.time() + client.first_token_timeout
        try:
            with mapped_errors():
                async with asyncio.timeout_at(first_deadline):
                    response, closer = await client.open(self._messages)
        except TimeoutError:
            raise ModelTimeout("first token", client.first_token_timeout) from None
        deadline = _StreamDeadline(loop, first_deadline, client.idle_timeout)
        done = False
        try:
            # The body's bytes, split into SSE lines here (one generator, not the four layers of
            # text decoding and line splitting under the SDK's ``iter_lines``: the hot path).
            blocks = aiter(response.http_response.aiter_bytes())
            rest = b""
            async with asyncio.timeout(None) as timeout:
                deadline.arm(timeout)
                ended = False
                while not done and not ended:
                    try:
                        with mapped_errors():
                            block = await anext(blocks)
                    except StopAsyncIteration:
                        if not rest:
                            break
                        block, ended = b"\n", True  # a last line without its newline still counts
                    lines = (rest + block).split(b"\n") if rest else block.split(b"\n")
                    rest = lines.pop()  # an incomplete line waits for the next block
                    for line in lines:
                        if not line.startswith(b"data:"):
                            continue  # blank separators, comments, "event:" lines
                        data = line[5:].strip()
                        if data == b"[DONE]":
                            done = True
                            break
                        deltas, progressed = self._parse(data)
                        if progressed:
                            deadline.alive()
                        if deltas:
                            if self.first_token_at is None:
                                self.first_token_at = time.monotonic()
                            deadline.suspended = True  # the consumer's time is not the model's
                            try:
                                for delta in deltas:
                                    yield delta
                            finally:
                                deadline.suspended = False
                            deadline.alive()
        except TimeoutError:
            if deadline.alive_at is None:
                raise ModelTimeout("first token", client.first_token_timeout) from None
            raise ModelTimeout("idle", client.idle_timeout) from None
        finally:
            deadline.disarm()
            with contextlib.suppress(Exception):
                await closer()
        if self.finish_reason == "content_filter":
            raise ContentFiltered("finish_reason content_filter")
        if not done and self.finish_reason is None:
            # A clean close without [DONE] or a finish_reason: the answer was cut, not finished.
            raise ModelUnavailable("stream ended before the answer was complete")

    def _parse(self, data: bytes | str) -> tuple[list[str], bool]:
        """One Chat Completions chunk (plain JSON, no per-chunk model objects: this is the hot path).
        Returns its content deltas, and whether it carried anything at all (content, usage or a
        finish_reason): an empty delta is a keep-alive, not progress."""
        try:
            chunk = json.loads(data.decode() if isinstance(data, bytes) else data)  # no encoding sniffing
        except ValueError:
            raise ModelUnavailable("malformed stream chunk") from None
        if not isinstance(chunk, dict):
            return [], False
        if chunk.get("error"):
            raise ModelUnavailable("error event in the stream")
        progressed = False
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            progressed = True
            self.usage = {
                "prompt_tokens": int(usage.get("prompt_tokens") or 0),
                "completion_tokens": int(usage.get("completion_tokens") or 0),
            }
        deltas: list[str] = []
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason"):
                progressed = True
                self.finish_reason = choice["finish_reason"]
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                deltas.append(content)
            elif delta.get("reasoning_content") or delta.get("reasoning"):
                # A reasoning model thinking out loud (vLLM, Ollama, DeepSeek): not part of the
                # answer, but the model is at work, so neither the first-token nor the idle
                # timeout should fire while it reasons.
                progressed = True
        return deltas, progressed or bool(deltas)


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
        self._token_param = "max_tokens"  # "max_completion_tokens" once the model refuses the old name
        timeout = httpx.Timeout(connect=10.0, read=None, write=30.0, pool=30.0)
        self._client = AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout,
            # The SDK's aiohttp transport (the `openai[aiohttp]` extra): the same client, but the
            # stream is read by aiohttp's C parser instead of httpcore/h11/anyio, which costs
            # about a third of the CPU per relayed chunk (docs/benchmarks.md).
            http_client=DefaultAioHttpClient(timeout=timeout),
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
        the model name the server reports; raises a ``ModelError`` when it fails. Reasoning models
        refuse ``max_tokens`` (400 unsupported_parameter): then it asks once more with
        ``max_completion_tokens``."""
        try:
            with mapped_errors():
                async with asyncio.timeout(timeout):
                    try:
                        response = await self._ping()
                    except openai.BadRequestError as err:
                        if not self._adapt(err, {self._token_param: 1}):
                            raise
                        response = await self._ping()
        except TimeoutError:
            raise ModelTimeout("check", timeout) from None
        return str(getattr(response, "model", "") or self.model)

    async def _ping(self) -> Any:
        limit: dict[str, Any] = {self._token_param: 1}  # max_tokens, or max_completion_tokens
        return await self._client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": "ping"}], **limit
        )

    def _adapt(self, err: openai.BadRequestError, sent: dict[str, Any]) -> bool:
        """A 400 that refuses an optional parameter we sent: stop sending it (for the life of the
        client) and return True, so the request is made again. False for any other 400."""
        text = f"{err.code or ''} {err.param or ''} {err.message}"
        if "stream_options" in sent and "stream_options" in text:
            logger.info("model server refuses stream_options; streaming without usage")
            self._usage_supported = False
            return True
        refused = "unsupported" in text.lower() or "not supported" in text.lower()
        names_it = err.param == "max_tokens" or "'max_tokens'" in text or '"max_tokens"' in text
        if "max_tokens" in sent and refused and names_it:
            logger.info("model refuses max_tokens; sending max_completion_tokens instead")
            self._token_param = "max_completion_tokens"
            return True
        return False

    async def open(self, messages: list[dict[str, str]]) -> tuple[Any, Callable[[], Awaitable[None]]]:
        """Start a streamed completion; returns the raw streaming response (the SSE lines are parsed
        by ``AnswerStream``, without building an SDK model per chunk) and a function that closes it.
        ``stream_options.include_usage`` is sent while the server accepts it, and the token limit as
        ``max_tokens`` while the model accepts that name; a 400 refusing either is asked again
        without it. HTTP errors raise the SDK's exceptions."""
        while True:
            kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True}
            if self.max_tokens is not None:
                kwargs[self._token_param] = self.max_tokens
            if self._usage_supported:
                kwargs["stream_options"] = {"include_usage": True}
            try:
                return await self._start(kwargs)
            except openai.BadRequestError as err:
                if not self._adapt(err, kwargs):  # each refusal adapts once: this ends
                    raise

    async def _start(self, kwargs: dict[str, Any]) -> tuple[Any, Callable[[], Awaitable[None]]]:
        manager = self._client.chat.completions.with_streaming_response.create(**kwargs)
        response = await manager.__aenter__()

        async def close() -> None:
            await manager.__aexit__(None, None, None)

        return response, close
