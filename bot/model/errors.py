"""What went wrong, in ``bot.errors`` terms: the ``openai``/``httpx``/``aiohttp`` exceptions and the
error bodies of OpenAI-compatible servers are translated here, once.

A server's error (an HTTP error status, an ``{"error": …}`` event inside the stream, or a 200 whose
JSON body is an error) is classified from its status, ``code``, ``type`` and message, so that the same
failure is named the same whoever serves it: OpenAI, LiteLLM (which wraps its upstream's error in its
own wording, e.g. ``Invalid model name passed in model=…`` as a 400, ``ContextWindowExceededError``),
vLLM, llama.cpp, Ollama. The server's own message is kept on the error (one line, at most
``SERVER_MESSAGE_LIMIT`` characters, secrets redacted) with its request id, for the logs and
``bot check``.

A connection that fails is named by its root cause (refused, name not resolved, timed out, reset),
found by walking the exception chain: the aiohttp transport under the SDK reports a refused
connection as ``httpx.ConnectTimeout``.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import aiohttp
import httpx
import openai

from bot.errors import (
    ContentFiltered,
    ContextTooLong,
    ImagesNotSupported,
    ImageUnreadable,
    MalformedReply,
    ModelAuthError,
    ModelBadRequest,
    ModelEndpointNotFound,
    ModelError,
    ModelNotFound,
    ModelOverloaded,
    ModelRateLimited,
    ModelServerError,
    ModelUnavailable,
    ModelUnreachable,
    QuotaExceeded,
    StreamCut,
)
from bot.logs import redact
from bot.model.retry import retry_after

SERVER_MESSAGE_LIMIT = 300

# Lower-case fragments of a server's code, type or message.
CONTEXT_HINTS = (
    "context_length_exceeded",  # OpenAI's code
    "context length",  # "This model's maximum context length is …" (OpenAI, vLLM)
    "maximum context",
    "too many tokens",
    "context window",  # LiteLLM "ContextWindowExceededError … context window exceeded", llama-cpp-python
    "contextwindowexceeded",
    "context size",  # llama.cpp: "the request exceeds the available context size"
    "exceed_context_size",
    "prompt is too long",
    "maximum model length",  # vLLM: "The decoder prompt (length N) is longer than the maximum model length"
)
UNKNOWN_MODEL_HINTS = (
    "model_not_found",  # OpenAI's code
    "invalid model name",  # LiteLLM: "Invalid model name passed in model=…" (a 400)
    "unknown model",
)
UNKNOWN_MODEL_PHRASES = ("does not exist", "not found", "no such model")  # with "model" (vLLM, Ollama)
OVERLOADED_HINTS = ("overloaded",)  # Anthropic's 529 "overloaded_error", via proxies
FILTER_HINTS = ("content_filter", "content management policy")
# A text-only model given image parts: "image input is not supported" (vLLM, llama.cpp), "… does not
# support images" (Ollama, LiteLLM), "Invalid content type. image_url is only supported by certain
# models." (OpenAI), "… is not a multimodal model" (vLLM).
IMAGE_WORDS = ("image", "multimodal", "vision")
IMAGE_REFUSALS = (
    "not supported",
    "does not support",
    "doesn't support",
    "only supported",
    "unsupported",
    "not a multimodal",
)
# A refusal of the image sent, not of images ("You uploaded an unsupported image", "Invalid image",
# "Image too large: images larger than 20MB are not supported"): asked again without it, later images
# still sent.
IMAGE_ITSELF = (
    "uploaded",
    "unsupported image",
    "invalid image",
    "valid image",
    "image format",
    "decode image",
    "cannot identify image",
    "too large",
    "larger than",
    "exceeds",
    "dimensions",
)
# A refusal of images as such, by the model: its later questions go without them (bot/generate.py).
# Anything else about images is taken as this image's problem, the cautious reading.
IMAGES_REFUSED_BY_MODEL = (
    "only supported by certain models",  # OpenAI: "image_url is only supported by certain models"
    "not supported for this model",  # vLLM: "image input is not supported for this model"
    "model does not support",  # Ollama: "this model does not support images"
    "not a multimodal",  # "llava is not a multimodal model"
    "does not support image input",
    "doesn't support image input",
    "vision is not supported",
)
REQUEST_ID_HEADERS = ("x-request-id", "x-litellm-call-id", "request-id")

_WRAPPED = re.compile(r"""^\{\s*['"]error['"]\s*:\s*['"](.*)['"]\s*\}$""", re.DOTALL)


def server_text(value: object, secrets: Iterable[str] = ()) -> str | None:
    """A server's message as one bounded, redacted line (``None`` when it said nothing)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    wrapped = _WRAPPED.match(text.strip())  # LiteLLM: "{'error': '/chat/completions: Invalid model…'}"
    if wrapped:
        text = wrapped.group(1)
    text = redact(" ".join(text.split()), secrets)
    if len(text) > SERVER_MESSAGE_LIMIT:
        text = text[: SERVER_MESSAGE_LIMIT - 1] + "…"
    return text or None


def _message_of(error: object) -> object:
    if isinstance(error, Mapping):
        for key in ("message", "detail", "error", "msg"):
            value = error.get(key)
            if isinstance(value, Mapping):
                return _message_of(value)
            if value:
                return value
    return error


def _status_of(code: object) -> int | None:
    if isinstance(code, int) and 100 <= code <= 599:
        return code
    if isinstance(code, str) and code.isdigit() and 100 <= int(code) <= 599:
        return int(code)
    return None


def from_server(
    status: int | None,
    error: object,
    headers: Mapping[str, str] | None,
    *,
    where: str | None = None,
    secrets: Iterable[str] = (),
) -> ModelError:
    """Classify a server's error. ``status`` is the HTTP status (``None`` for an error event inside a
    stream or a 200 body: then a numeric ``code`` stands for it); ``error`` the body's ``error`` object
    (or the whole body, or its text)."""
    fields: Mapping[str, Any] = error if isinstance(error, Mapping) else {}
    code = str(fields.get("code") or "")
    kind = str(fields.get("type") or "")
    message = server_text(_message_of(error), secrets)
    if status is None:
        status = _status_of(fields.get("code"))
    text = f"{code} {kind} {message or ''}".lower()
    request_id = None
    if headers is not None:
        request_id = next((headers[h] for h in REQUEST_ID_HEADERS if headers.get(h)), None)
    detail = where or (f"http {status}" if status is not None else "error")
    extra: dict[str, Any] = {
        "status": status,
        "server_message": message,
        "server_request_id": server_text(request_id),
    }

    if status in (401, 403):
        return ModelAuthError(detail, **extra)
    if "insufficient_quota" in text:
        return QuotaExceeded(detail, **extra)
    if status != 429 and any(hint in text for hint in CONTEXT_HINTS):
        return ContextTooLong(detail, **extra)  # first: a multimodal model's may speak of images
    if _refuses_images(status, text):
        if any(hint in text for hint in IMAGES_REFUSED_BY_MODEL) and not any(h in text for h in IMAGE_ITSELF):
            return ImagesNotSupported(detail, **extra)
        return ImageUnreadable(detail, **extra)
    if status == 429:
        return ModelRateLimited(detail, retry_after=retry_after(headers), **extra)
    if any(hint in text for hint in UNKNOWN_MODEL_HINTS) or (
        "model" in text and any(phrase in text for phrase in UNKNOWN_MODEL_PHRASES)
    ):
        return ModelNotFound(detail, **extra)
    if status == 404:
        return ModelEndpointNotFound(detail, **extra)
    if any(hint in text for hint in FILTER_HINTS):
        return ContentFiltered(detail, **extra)
    if status in (503, 529) or any(hint in text for hint in OVERLOADED_HINTS):
        return ModelOverloaded(detail, retry_after=retry_after(headers), **extra)
    if status is None or status >= 500:
        return ModelServerError(detail, retry_after=retry_after(headers), **extra)
    return ModelBadRequest(detail, **extra)


def _refuses_images(status: int | None, text: str) -> bool:
    """A 4xx (not 404, not 429) that says the model takes no images, or not the one it was sent."""
    if status is None or not 400 <= status < 500 or status in (404, 429):
        return False
    return any(w in text for w in IMAGE_WORDS) and any(r in text for r in (*IMAGE_REFUSALS, *IMAGE_ITSELF))


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _address(err: BaseException) -> str:
    request = getattr(err, "request", None)
    url = getattr(request, "url", None) if request is not None else None
    if isinstance(url, httpx.URL) and url.host:
        return f" ({url.host}:{url.port or (443 if url.scheme == 'https' else 80)})"
    return ""


def connection_problem(err: BaseException) -> str:
    """What happened to a connection that failed, in a few words, from the root of the chain."""
    chain = list(_chain(err))
    for exc in chain:
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, socket.gaierror):
            return "server name not resolved"
        if isinstance(exc, ConnectionResetError):
            return "connection reset"
        if isinstance(exc, ssl.SSLError):
            return "TLS failed"
        if isinstance(exc, aiohttp.ServerDisconnectedError | httpx.RemoteProtocolError):
            return "the server closed the connection"
    for exc in chain:
        if isinstance(exc, httpx.ReadTimeout):
            return "read timed out"
        if isinstance(exc, TimeoutError | httpx.TimeoutException | aiohttp.ServerTimeoutError):
            return "connect timed out"
        if isinstance(exc, aiohttp.ClientConnectorError | httpx.ConnectError):
            return "cannot connect"
    return type(chain[-1]).__name__


def translate(err: BaseException, *, secrets: Iterable[str] = ()) -> ModelError:
    """Map an exception raised by the ``openai`` package (or httpx or aiohttp under it) while a
    request is made or its answer awaited to a ``ModelError``."""
    if isinstance(err, ModelError):
        return err
    if isinstance(err, openai.APIStatusError):
        return from_server(err.status_code, err.body, err.response.headers, secrets=secrets)
    if isinstance(err, openai.APIResponseValidationError):
        return MalformedReply("the server's reply is not a chat completion")
    if isinstance(err, openai.APIConnectionError | httpx.TransportError | aiohttp.ClientError):
        problem = connection_problem(err)
        if problem == "read timed out":  # connected, then no answer
            return ModelUnavailable(problem + _address(err))
        return ModelUnreachable(problem + _address(err))
    if isinstance(err, openai.APIError):
        return ModelServerError("error from the server")
    return ModelBadRequest(type(err).__name__)


@contextlib.contextmanager
def mapped_errors(secrets: Iterable[str] = ()) -> Iterator[None]:
    """Around a request and the wait for its response's headers."""
    try:
        yield
    except (openai.OpenAIError, httpx.HTTPError, aiohttp.ClientError) as err:
        raise translate(err, secrets=secrets) from err


@contextlib.contextmanager
def body_errors() -> Iterator[None]:
    """Around the read of a streamed body: the server had answered, so a broken connection now cut
    the answer short."""
    try:
        yield
    except (httpx.HTTPError, aiohttp.ClientError, OSError) as err:
        raise StreamCut(f"the connection broke mid-answer ({connection_problem(err)})") from err
