"""Reading a request body within a bound, without holding memory after a refusal.

aiohttp's own ``request.read()`` buffers up to ``client_max_size`` and then *raises*
``HTTPRequestEntityTooLarge``; the exception's traceback keeps the frame that holds the buffer, and the
server keeps the exception as its response: a reference cycle of a megabyte or more per refused request.
Cycles are freed only by the cyclic garbage collector, which this service runs rarely (see
``bot.__main__.tune_gc``), so 200 oversized POSTs held ~700 MB. Here a declared ``Content-Length`` over
the bound is refused before one byte is read, and a chunked body is read into a list that is dropped at
once by reference counting when the bound is crossed: nothing to collect.
"""

from __future__ import annotations

from aiohttp import web

from bot.constants import SLACK_MAX_BODY_BYTES


async def read_bounded(request: web.Request, limit: int = SLACK_MAX_BODY_BYTES) -> bytes | None:
    """The whole body, or ``None`` when it is (or is declared) larger than ``limit`` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int = SLACK_MAX_BODY_BYTES) -> web.Response:
    """413, and the connection closed: the rest of the body is not read (or drained) at all."""
    response = web.json_response(
        {"ok": False, "error": "request_too_large", "limit_bytes": limit}, status=413
    )
    response.force_close()
    return response
