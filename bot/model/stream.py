"""One attempt of a streamed Chat Completion: the SSE body parsed into events, under its deadlines.

Timeouts are enforced on the wait for each chunk, not when a chunk arrives, so a stalled stream
times out on time: ``first_token`` is absolute from the request's start (headers included) until the
first content, ``idle`` counts from the last chunk that carried something (content, usage, a
finish_reason, reasoning); keep-alive comments, blank lines and empty deltas move neither. A
first-token timeout is retryable (nothing was shown yet); an idle one is not.

How an attempt ends:

- ``[DONE]`` or a finish_reason: ``Finished``. ``"content_filter"`` raises ``ContentFiltered``;
  ``"length"`` is logged (the answer was cut off), and with nothing written at all it raises
  ``ContextTooLong`` (the prompt filled the model's context: llama.cpp answers so);
- a clean close without either: the answer was cut, ``StreamCut`` (retried like a dropped
  connection); a connection that breaks while the body is read: ``StreamCut`` too;
- an ``{"error": …}`` event: the server's error, classified as for an HTTP error
  (``bot.model.errors.from_server``);
- a ``data:`` line that is not JSON: ``MalformedReply`` (not retried: it is not an overload);
- a server that ignores ``stream: true`` and answers one JSON completion: its answer is used (one
  ``Delta`` and ``Finished``).

The hot path is the loop over body blocks: lines are split from bytes here, each chunk is parsed
as plain JSON (no SDK model objects), and one timer holds both deadlines (``_StreamDeadline``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, Protocol

from bot.errors import (
    ContentFiltered,
    ContextTooLong,
    MalformedReply,
    ModelError,
    ModelTimeout,
    StreamCut,
)
from bot.model.base import Delta, Finished
from bot.model.errors import body_errors, from_server, mapped_errors, server_text

logger = logging.getLogger(__name__)

Opened = tuple[Any, Callable[[], Awaitable[None]]]  # the SDK's raw streaming response, its closer


class Server(Protocol):
    """What an attempt needs of its client (``bot.model.openai.OpenAIModel``)."""

    first_token_timeout: float
    idle_timeout: float
    max_tokens: int | None
    secrets: tuple[str, ...]

    async def open(self, messages: list[dict[str, Any]]) -> Opened: ...


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


class Attempt:
    """One request and its answer. ``events()`` yields ``Delta``s, then one ``Finished``; afterwards
    ``usage`` and ``finish_reason`` hold what the server reported."""

    def __init__(self, server: Server, messages: list[dict[str, Any]]) -> None:
        self._server = server
        self._messages = messages
        self._headers: Mapping[str, str] | None = None
        self.usage: dict[str, int] | None = None
        self.finish_reason: str | None = None
        self.first_token_at: float | None = None
        self.reasoned = False

    async def events(self) -> AsyncGenerator[Delta | Finished, None]:
        server = self._server
        loop = asyncio.get_running_loop()
        # The first-token deadline is absolute from the request's start: it covers the response
        # headers too, and lines without content (": ping" keep-alives, blank lines, empty deltas)
        # do not move it.
        first_deadline = loop.time() + server.first_token_timeout
        try:
            with mapped_errors(server.secrets):
                async with asyncio.timeout_at(first_deadline):
                    response, closer = await server.open(self._messages)
        except TimeoutError:
            raise ModelTimeout("first token", server.first_token_timeout) from None
        deadline = _StreamDeadline(loop, first_deadline, server.idle_timeout)
        done = False
        try:
            http = response.http_response
            self._headers = http.headers
            if http.headers.get("content-type", "").startswith("application/json"):
                # A server that ignores "stream": true and answers one completion.
                try:
                    async with asyncio.timeout_at(first_deadline):
                        with body_errors():
                            body = await http.aread()
                except TimeoutError:
                    raise ModelTimeout("first token", server.first_token_timeout) from None
                text = self._whole(body)
                if text:
                    self.first_token_at = time.monotonic()
                    yield Delta(text)
                done = True
            else:
                # The body's bytes, split into SSE lines here (one generator, not the four layers
                # of text decoding and line splitting under the SDK's ``iter_lines``: the hot path).
                blocks = aiter(http.aiter_bytes())
                rest = b""
                async with asyncio.timeout(None) as timeout:
                    deadline.arm(timeout)
                    ended = False
                    while not done and not ended:
                        try:
                            with body_errors():
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
                                        yield Delta(delta)
                                finally:
                                    deadline.suspended = False
                                deadline.alive()
        except TimeoutError:
            if deadline.alive_at is None:
                raise ModelTimeout("first token", server.first_token_timeout) from None
            raise ModelTimeout("idle", server.idle_timeout) from None
        finally:
            deadline.disarm()
            with contextlib.suppress(Exception):
                await closer()
        yield self._finished(done)

    def _finished(self, done: bool) -> Finished:
        reason = self.finish_reason
        usage = self.usage
        completion = usage["completion_tokens"] if usage is not None else None
        if reason == "content_filter":
            raise ContentFiltered("finish_reason content_filter")
        if not done and reason is None:
            # A clean close without [DONE] or a finish_reason: the answer was cut, not finished.
            raise StreamCut("stream ended before the answer was complete")
        if reason == "length":
            if self.first_token_at is None and not self.reasoned and not completion:
                raise ContextTooLong("the server stopped at its length limit before writing anything")
            logger.warning(
                "answer cut off: the server stopped at its length limit (finish_reason length, %s "
                "completion tokens, BOT_MAX_ANSWER_TOKENS %s)",
                "?" if completion is None else completion,
                self._server.max_tokens or "not set",
            )
        return Finished(
            finish_reason=reason,
            prompt_tokens=usage["prompt_tokens"] if usage is not None else None,
            completion_tokens=completion,
        )

    def _usage(self, usage: dict[str, Any]) -> None:
        self.usage = {
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
        }

    def _error(self, error: object, where: str) -> ModelError:
        return from_server(None, error, self._headers, where=where, secrets=self._server.secrets)

    def _parse(self, data: bytes | str) -> tuple[list[str], bool]:
        """One Chat Completions chunk (plain JSON, no per-chunk model objects: this is the hot path).
        Returns its content deltas, and whether it carried anything at all (content, usage or a
        finish_reason): an empty delta is a keep-alive, not progress."""
        try:
            chunk = json.loads(data.decode() if isinstance(data, bytes) else data)  # no encoding sniffing
        except ValueError:
            snippet = server_text(data[:120].decode(errors="replace") if isinstance(data, bytes) else data)
            raise MalformedReply("a stream line that is not JSON", server_message=snippet) from None
        if not isinstance(chunk, dict):
            return [], False
        if chunk.get("error"):
            raise self._error(chunk["error"], "error event in the stream")
        progressed = False
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            progressed = True
            self._usage(usage)
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
                self.reasoned = True
        return deltas, progressed or bool(deltas)

    def _whole(self, body: bytes) -> str:
        """A non-streamed completion (or error) answered to a streamed request: its text."""
        try:
            completion = json.loads(body.decode())
        except ValueError:
            snippet = server_text(body[:120].decode(errors="replace"))
            raise MalformedReply("a JSON reply that is not JSON", server_message=snippet) from None
        if not isinstance(completion, dict):
            raise MalformedReply("a JSON reply that is not a completion")
        if completion.get("error"):
            raise self._error(completion["error"], "error in the reply")
        choices = completion.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise MalformedReply("a JSON reply without choices")
        if isinstance(completion.get("usage"), dict):
            self._usage(completion["usage"])
        choice = choices[0]
        self.finish_reason = choice.get("finish_reason") or "stop"
        message = choice.get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        return content if isinstance(content, str) else ""
