"""The OpenAI-compatible model client: Chat Completions streaming through the ``openai`` package.

Works with OpenAI and any server that speaks the same API (vLLM, Ollama, LiteLLM, llama.cpp, Azure's
compatible endpoint). One ``AsyncOpenAI`` per process, with ``max_retries=0``: retries belong to one
layer only, ``answer`` (``bot.model.retry``'s policy). The SDK's aiohttp transport reads the stream;
``bot.model.stream`` parses it under its deadlines; ``bot.model.errors`` names what went wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import openai
from openai import AsyncOpenAI, DefaultAioHttpClient

from bot.errors import ModelBadRequest, ModelError, ModelNotFound, ModelTimeout
from bot.model.base import ModelEvent, Retrying
from bot.model.errors import mapped_errors
from bot.model.retry import RetryPolicy
from bot.model.stream import Attempt, Opened

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context httpx builds for a client by default (certifi's CA bundle, or SSL_CERT_FILE /
    SSL_CERT_DIR when set), built once per process and shared: loading the CA bundle costs about 40 ms
    of CPU, which every client would otherwise pay again (the tests start hundreds of bots in-process)."""
    return httpx.create_ssl_context(trust_env=True)


class OpenAIModel:
    """A ``ModelClient`` (``bot.model.base``) for an OpenAI-compatible server."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        first_token_timeout: float,
        idle_timeout: float,
        max_tokens: int | None = None,
        attempts: int = 1,
        retry_base: float = 1.0,
    ) -> None:
        self.model = model
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self.max_tokens = max_tokens
        self.policy = RetryPolicy(attempts=attempts, base=retry_base)
        # Redacted from the server's messages kept on errors (a proxy may echo the key it refused).
        self.secrets: tuple[str, ...] = (api_key,) if len(api_key) >= 6 else ()
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
            http_client=DefaultAioHttpClient(timeout=timeout, verify=tls_context()),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIModel:
        return cls(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            first_token_timeout=settings.first_token_timeout_seconds,
            idle_timeout=settings.idle_timeout_seconds,
            max_tokens=settings.max_answer_tokens,
            attempts=settings.max_attempts,
            retry_base=settings.retry_base_seconds,
        )

    async def close(self) -> None:
        await self._client.close()

    # -- answers ----------------------------------------------------------------------------------
    def attempt(self, messages: list[dict[str, Any]]) -> Attempt:
        """One request, not retried."""
        return Attempt(self, messages)

    async def answer(self, messages: list[dict[str, Any]]) -> AsyncIterator[ModelEvent]:
        attempts = self.policy.attempts
        attempt = 1
        while True:
            try:
                async with contextlib.aclosing(self.attempt(messages).events()) as events:
                    async for event in events:
                        yield event
                return
            except ModelError as err:
                wait = self.policy.next_wait(attempt, err)
                if wait is None:
                    raise
                failed = err
            logger.warning(
                "model attempt %d of %d failed (%s: %s); trying again in %.2gs",
                attempt,
                attempts,
                type(failed).__name__,
                failed,
                wait,
            )
            attempt += 1
            yield Retrying(attempt=attempt, attempts=attempts, error=failed, wait=wait)
            await asyncio.sleep(wait)

    async def open(self, messages: list[dict[str, Any]]) -> Opened:
        """Start a streamed completion; returns the raw streaming response (the SSE lines are parsed
        by ``Attempt``, without building an SDK model per chunk) and a function that closes it.
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

    async def _start(self, kwargs: dict[str, Any]) -> Opened:
        manager = self._client.chat.completions.with_streaming_response.create(**kwargs)
        response = await manager.__aenter__()

        async def close() -> None:
            await manager.__aexit__(None, None, None)

        return response, close

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

    # -- checks -----------------------------------------------------------------------------------
    async def ping(self, *, timeout: float) -> None:
        """Readiness: ``GET /models`` answers. Raises a ``ModelError`` when the server cannot be
        reached or refuses the key; a server without that endpoint (404, 400) counts as reachable."""
        try:
            with mapped_errors(self.secrets):
                await asyncio.wait_for(self._client.models.list(), timeout)
        except TimeoutError:
            raise ModelTimeout("reachability check", timeout) from None
        except (ModelNotFound, ModelBadRequest):
            return

    async def probe(self, *, timeout: float) -> str:
        """``bot check``: a one-token, non-streaming completion with the configured model. Returns
        the model name the server reports; raises a ``ModelError`` when it fails. Reasoning models
        refuse ``max_tokens`` (400 unsupported_parameter): then it asks once more with
        ``max_completion_tokens``."""
        try:
            with mapped_errors(self.secrets):
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
