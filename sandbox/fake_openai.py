"""An HTTP-level fake of OpenAI's Chat Completions API (streaming and not), for ``openai.AsyncOpenAI``.

    async with FakeOpenAI() as llm:
        llm.script(Reply.text("Hello there", delay=0.01), Reply(chunks=[], status=500))
        client = AsyncOpenAI(api_key=llm.api_key, base_url=llm.base_url, max_retries=0)

Every POST to ``/v1/chat/completions`` (retries included) takes the next scripted ``Reply``, or
``reply_for(request body)`` when the script is empty (``default_reply`` unless a subclass decides, as the
sandbox's demo model does). A streamed reply is written as Server-Sent Events exactly as
OpenAI does, one network write per chunk, so the client sees each chunk when it is sent.

Other servers' ways can be scripted too: their error bodies (``error_body``; ``Reply.litellm_error``
writes LiteLLM's), extra headers (LiteLLM's ``llm_provider-retry-after``), an ``{"error": …}`` event in
the middle of a stream (``error_event``), a ``data:`` line that is not JSON (``raw``), a server that
ignores ``"stream": true`` and answers one JSON completion (``ignore_stream``), and an answer cut at the
length limit (``finish_reason="length"``, or the request's ``max_tokens``). A refused connection is a
closed port, not this fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.server import LocalServer

__all__ = ["IMAGE_REFUSALS", "FakeOpenAI", "Reply", "image_parts"]

JSONDict = dict[str, Any]

# What text-only models answer (HTTP 400) to a request with image parts, by server.
IMAGE_REFUSALS = {
    "openai": "Invalid content type. image_url is only supported by certain models.",
    "vllm": "image input is not supported for this model",
    "ollama": "this model does not support images",
}


def image_parts(body: JSONDict) -> list[JSONDict]:
    """The ``image_url`` parts of a request's messages (list contents), in order."""
    parts: list[JSONDict] = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            parts += [p for p in content if isinstance(p, dict) and p.get("type") == "image_url"]
    return parts


# error code -> (HTTP status, error type, message)
_ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid_api_key": (
        401,
        "invalid_request_error",
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    "model_not_found": (
        404,
        "invalid_request_error",
        "The model does not exist or you do not have access to it.",
    ),
    "context_length_exceeded": (
        400,
        "invalid_request_error",
        "This model's maximum context length is 128000 tokens. Please reduce the length of the messages.",
    ),
    "rate_limit_exceeded": (429, "requests", "Rate limit reached for requests. Please try again in 1s."),
    "insufficient_quota": (
        429,
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "server_error": (
        500,
        "server_error",
        "The server had an error while processing your request. Sorry about that!",
    ),
}


def _default_error(status: int) -> tuple[str | None, str, str]:
    if status == 401:
        return "invalid_api_key", *_ERRORS["invalid_api_key"][1:]
    if status == 429:
        return "rate_limit_exceeded", *_ERRORS["rate_limit_exceeded"][1:]
    if status >= 500:
        return None, "server_error", _ERRORS["server_error"][2]
    return None, "invalid_request_error", f"Fake error with HTTP status {status}."


@dataclass
class Reply:
    """What the fake answers to one request."""

    chunks: list[str]  # content deltas
    first_delay: float = 0.0  # seconds before the response starts (headers and first chunk arrive together)
    delay: float = 0.0  # between chunks
    status: int | None = None  # answer this HTTP status with an OpenAI error body instead of a completion
    error_code: str | None = None  # e.g. "context_length_exceeded"; alone it implies its usual status
    retry_after: float | None = None  # Retry-After header on an error
    cut_after: int | None = None  # drop the connection after this many content chunks (no [DONE])
    stall_after: int | None = None  # stop sending after this many content chunks, keep the connection open
    keepalive: float | None = None  # while stalled, every this many seconds: ": ping", a blank line, ""
    close_after: int | None = None  # end the response cleanly after this many chunks: no finish, no [DONE]
    reasoning: list[str] = field(default_factory=list)  # reasoning_content deltas before the content
    final_newline: bool = True  # False: the body ends right after "data: [DONE]", as some servers do
    raw: list[str] = field(default_factory=list)  # data payloads sent verbatim after the content chunks
    finish_reason: str = "stop"  # e.g. "content_filter", "length"
    model: str | None = None  # defaults to the request's model
    usage: JSONDict | None = field(default=None)  # overrides the computed usage
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (an error's too)
    error_body: JSONDict | str | None = None  # with ``status``: this body verbatim (a str as text/plain)
    error_event: JSONDict | None = None  # sent as "data: {...}" after the content chunks; then the body ends
    ignore_stream: bool = False  # answer one JSON completion even when the request asked to stream

    @classmethod
    def text(cls, text: str, *, words_per_chunk: int = 1, delay: float = 0.0, **kwargs: Any) -> Reply:
        """Split ``text`` into chunks of words, each word with its leading whitespace, like model tokens.

        ``"".join(reply.chunks) == text`` always holds.
        """
        words = re.findall(r"\s*\S+", text)
        if not words:
            return cls(chunks=[text] if text else [], delay=delay, **kwargs)
        consumed = sum(len(w) for w in words)
        words[-1] += text[consumed:]  # trailing whitespace
        n = max(1, words_per_chunk)
        chunks = ["".join(words[i : i + n]) for i in range(0, len(words), n)]
        return cls(chunks=chunks, delay=delay, **kwargs)

    @classmethod
    def error(
        cls, status: int | None = None, code: str | None = None, *, retry_after: float | None = None
    ) -> Reply:
        return cls(chunks=[], status=status, error_code=code, retry_after=retry_after)

    @classmethod
    def litellm_error(
        cls, status: int, message: str, *, wrapped: bool = False, headers: dict[str, str] | None = None
    ) -> Reply:
        """An error as the LiteLLM proxy writes it: ``code`` is the status as a string, ``type`` and
        ``param`` often the string "None", and (``wrapped``) the message a Python dict's repr, as its
        proxy answers an unknown model: ``{'error': '/chat/completions: Invalid model name …'}``."""
        text = f"{{'error': '/chat/completions: {message}'}}" if wrapped else message
        body: JSONDict = {"error": {"message": text, "type": "None", "param": "None", "code": str(status)}}
        return cls(chunks=[], status=status, error_body=body, headers=dict(headers or {}))

    @property
    def content(self) -> str:
        return "".join(self.chunks)

    def http_status(self) -> int | None:
        if self.status is not None:
            return self.status
        if self.error_code is not None:
            return _ERRORS.get(self.error_code, (400, "", ""))[0]
        return None


class FakeOpenAI(LocalServer):
    def __init__(
        self, *, api_key: str = "sk-test", model: str = "gpt-4o-mini", host: str = "127.0.0.1"
    ) -> None:
        self.api_key = api_key
        self.model = model
        self.host = host
        self.default_reply = Reply.text("Hello from the fake model.")
        self.requests: list[JSONDict] = []  # JSON bodies of chat completion requests (authorized ones)
        self.request_times: list[float] = []  # time.monotonic() when each of `requests` arrived
        self.finished_at: list[float] = []  # time.monotonic() when each complete answer was sent
        self.request_headers: list[dict[str, str]] = []
        self.unknown_paths: list[str] = []
        self.auth_failures = 0
        self.active_streams = 0  # streams being written right now
        self.peak_streams = 0  # the most streams written at once
        self.finished_streams = 0  # streams that ended with [DONE]
        self.abandoned_streams = 0  # streams the client went away from before the end
        self.cut_streams = 0  # streams the fake dropped or closed early (cut_after, close_after, stalls)
        # Parameters answered with 400 unsupported_parameter, as reasoning models answer "max_tokens".
        self.unsupported_params: set[str] = set()
        # A text-only model: a request with image parts is answered 400 with this message (see
        # IMAGE_REFUSALS), before any scripted reply is used.
        self.reject_images: str | None = None
        self.image_refusals = 0
        self._script: deque[Reply] = deque()
        self._ids = itertools.count(1)
        self._change = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0) -> None:
        """Serve on ``port`` (0: a free port); a stopped fake may start again on its old port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle_chat)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_get("/v1/models/{model}", self._handle_model)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, port)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._stopping.set()  # stalled streams end (by dropping their connection)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._changed()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # ------------------------------------------------------------------ scripting and waiting

    def script(self, *replies: Reply) -> None:
        """Queue replies, one per request, after any already queued."""
        self._script.extend(replies)

    @property
    def pending_replies(self) -> int:
        return len(self._script)

    def describe(self) -> str:
        return (
            f"{len(self.requests)} requests, {self.active_streams} active, {self.finished_streams} finished, "
            f"{self.abandoned_streams} abandoned streams, {len(self._script)} scripted replies left, "
            f"unknown paths: {self.unknown_paths}"
        )

    def reply_for(self, body: JSONDict) -> Reply:
        """The reply to a request when nothing is scripted: ``default_reply``. Subclasses may look at the
        request's ``body`` (its messages, model, ...)."""
        return self.default_reply

    # ------------------------------------------------------------------ handlers

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.api_key}"

    def _error(
        self,
        status: int,
        code: str | None,
        *,
        retry_after: float | None = None,
        body: JSONDict | str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> web.Response:
        headers = {"x-request-id": f"req_{uuid.uuid4().hex}", **(extra_headers or {})}
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        if isinstance(body, str):
            return web.Response(text=body, status=status, headers=headers)
        if body is not None:
            return web.json_response(body, status=status, headers=headers)
        if code is not None and code in _ERRORS:
            _, kind, message = _ERRORS[code]
        else:
            default_code, kind, message = _default_error(status)
            code = code or default_code
        error = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return web.json_response(error, status=status, headers=headers)

    def _unsupported(self, param: str) -> web.Response:
        message = f"Unsupported parameter: '{param}' is not supported with this model."
        if param == "max_tokens":
            message += " Use 'max_completion_tokens' instead."
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": "unsupported_parameter",
            }
        }
        return web.json_response(body, status=400, headers={"x-request-id": f"req_{uuid.uuid4().hex}"})

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        self.unknown_paths.append(f"{request.method} {request.path}")
        self._changed()
        body = {
            "error": {
                "message": f"Invalid URL ({request.method} {request.path})",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }
        return web.json_response(body, status=404)

    def _model_json(self, model: str) -> JSONDict:
        return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "fake-openai"}

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            self.auth_failures += 1
            return self._error(401, "invalid_api_key")
        return web.json_response({"object": "list", "data": [self._model_json(self.model)]})

    async def _handle_model(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            self.auth_failures += 1
            return self._error(401, "invalid_api_key")
        model = request.match_info["model"]
        if model != self.model:
            return self._error(404, "model_not_found")
        return web.json_response(self._model_json(model))

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            self.auth_failures += 1
            self._changed()
            return self._error(401, "invalid_api_key")
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, None)
        if not isinstance(body, dict):
            return self._error(400, None)
        self.requests.append(body)
        self.request_times.append(time.monotonic())
        self.request_headers.append(dict(request.headers))
        refused = sorted(self.unsupported_params & body.keys())
        if refused:  # refused before any scripted reply is used
            self._changed()
            return self._unsupported(refused[0])
        if self.reject_images is not None and image_parts(body):
            self.image_refusals += 1
            self._changed()
            error = {"message": self.reject_images, "type": "invalid_request_error", "code": None}
            return self._error(400, None, body={"error": {**error, "param": None}})
        reply = self._script.popleft() if self._script else self.reply_for(body)
        self._changed()

        if not await self._pause(reply.first_delay):
            return self._drop(request, web.Response(status=503))
        status = reply.http_status()
        if status is not None:
            return self._error(
                status,
                reply.error_code,
                retry_after=reply.retry_after,
                body=reply.error_body,
                extra_headers=reply.headers,
            )

        model = reply.model or str(body.get("model") or self.model)
        chunks, finish_reason = self._limit(reply, body)
        usage = reply.usage or self._usage(body, chunks)
        completion_id = f"chatcmpl-fake{next(self._ids):06d}"
        created = int(time.time())
        if not body.get("stream") or reply.ignore_stream:
            self.finished_at.append(time.monotonic())
            self._changed()
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(chunks), "refusal": None},
                            "logprobs": None,
                            "finish_reason": finish_reason,
                        }
                    ],
                    "usage": usage,
                },
                headers={"x-request-id": f"req_{uuid.uuid4().hex}", **reply.headers},
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self._stream(
            request,
            reply,
            chunks,
            finish_reason,
            usage if include_usage else None,
            completion_id,
            created,
            model,
        )

    def _limit(self, reply: Reply, body: JSONDict) -> tuple[list[str], str]:
        """Apply ``max_tokens`` / ``max_completion_tokens`` (one chunk counts as one token)."""
        chunks = list(reply.chunks)
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(limit, int) and 0 < limit < len(chunks):
            return chunks[:limit], "length"
        return chunks, reply.finish_reason

    def _usage(self, body: JSONDict, chunks: list[str]) -> JSONDict:
        prompt = 0
        for message in body.get("messages") or []:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                prompt += len(content.split()) + 4
            elif isinstance(content, list):
                texts = [str(part.get("text", "")) for part in content if isinstance(part, dict)]
                prompt += sum(len(text.split()) for text in texts)
        completion = len(chunks)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    async def _stream(
        self,
        request: web.Request,
        reply: Reply,
        chunks: list[str],
        finish_reason: str,
        usage: JSONDict | None,
        completion_id: str,
        created: int,
        model: str,
    ) -> web.StreamResponse:
        def event(choices: list[JSONDict], **extra: Any) -> bytes:
            data: JSONDict = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
                "choices": choices,
            }
            if usage is not None:
                data["usage"] = None  # as OpenAI: every chunk carries "usage": null until the last one
            data.update(extra)
            return f"data: {json.dumps(data)}\n\n".encode()

        def delta(content: JSONDict, finish: str | None = None) -> list[JSONDict]:
            return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

        resp = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": f"req_{uuid.uuid4().hex}",
                **reply.headers,
            },
        )
        await resp.prepare(request)
        self.active_streams += 1
        self.peak_streams = max(self.peak_streams, self.active_streams)
        self._changed()
        outcome = "abandoned"
        try:
            await resp.write(event(delta({"role": "assistant", "content": "", "refusal": None})))
            for thought in reply.reasoning:  # a reasoning model's thinking, before the answer
                if reply.delay and not await self._pause(reply.delay):
                    outcome = "cut"
                    return self._drop(request, resp)
                await resp.write(event(delta({"content": None, "reasoning_content": thought})))
            for i, chunk in enumerate([*chunks, None]):
                if reply.cut_after is not None and i >= reply.cut_after:
                    outcome = "cut"
                    return self._drop(request, resp)
                if reply.close_after is not None and i >= reply.close_after:
                    await resp.write_eof()  # a clean end of the body, but the answer never finished
                    outcome = "cut"
                    return resp
                if reply.stall_after is not None and i >= reply.stall_after:
                    if reply.keepalive:
                        keepalive = b": ping\n\n" + event(delta({"content": ""}))
                        with contextlib.suppress(ConnectionError):  # the client gave up
                            while await self._pause(reply.keepalive):
                                await resp.write(keepalive)
                    else:
                        await self._stopping.wait()
                    outcome = "cut"
                    return self._drop(request, resp)
                if chunk is None:
                    break
                if i and reply.delay and not await self._pause(reply.delay):
                    outcome = "cut"
                    return self._drop(request, resp)
                await resp.write(event(delta({"content": chunk})))
            for data in reply.raw:
                await resp.write(f"data: {data}\n\n".encode())
            if reply.error_event is not None:  # as LiteLLM reports an upstream failure mid-answer
                await resp.write(f"data: {json.dumps(reply.error_event)}\n\n".encode())
                await resp.write_eof()
                outcome = "cut"
                return resp
            await resp.write(event(delta({}, finish_reason)))
            if usage is not None:
                await resp.write(event([], usage=usage))
            await resp.write(b"data: [DONE]\n\n" if reply.final_newline else b"data: [DONE]")
            await resp.write_eof()
            outcome = "finished"
            self.finished_at.append(time.monotonic())
            return resp
        finally:
            self.active_streams -= 1
            if outcome == "finished":
                self.finished_streams += 1
            elif outcome == "cut":
                self.cut_streams += 1
            else:
                self.abandoned_streams += 1
            self._changed()

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` (the scripted model's own pace); False if the fake is stopping meanwhile."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    def _drop(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        """Close the connection abruptly: the chunked body never ends, so the client sees an error."""
        if request.transport is not None:
            request.transport.abort()
        return resp
