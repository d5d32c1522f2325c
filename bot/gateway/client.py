"""The Slack Web API boundary: every call the bot makes to Slack goes through ``SlackGateway``.

- Every method that Slack rate-limits (per workspace: edits, reactions, thread reads, the stream
  methods; per channel: posts) goes through ``paced``: a slot of that method's budget first, and a 429
  pauses it (``bot.gateway.pacing``): callers never pace or handle Retry-After themselves.

- Three long-lived clients sharing one aiohttp session (never a new client per call).
- Paced idempotent calls (``chat.update``, reactions, thread reads, ``assistant.threads.setStatus``)
  carry slack_sdk's connection-error and server-error retry handlers, not the rate-limit one: their
  budgets own their 429s (one retry layer per call). Unpaced idempotent calls (ephemerals, deletes,
  ``users.info``, ``conversations.history``) carry all three handlers, the rate-limit one included.
- ``chat.postMessage`` carries none: a retry after a lost response could post twice.
  ``posts.post_answer`` (``bot.gateway.posts``) retries a post itself after looking for it in the
  thread: every post carries message metadata naming the request.
- Every bot message is sent with ``unfurl_links``/``unfurl_media`` false and ``parse="none"``
  (``SAFE_MESSAGE``; ephemerals, which do not unfurl, with ``parse="none"``).
- ``SlackApiError`` is translated once, into ``bot.errors.SlackError``/``CannotPost``
  (``bot.gateway.errors``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.constants import SAFE_MESSAGE
from bot.errors import SlackError
from bot.gateway.errors import answer_metadata, mapped
from bot.gateway.files import FileDownloads
from bot.gateway.pacing import Pacing
from bot.gateway.posts import AnswerPosts
from bot.gateway.streams import NativeStreams
from bot.gateway.threads import ThreadReader
from bot.ratelimit.base import Priority

logger = logging.getLogger(__name__)


def _web_clients(
    *, token: str, base_url: str, timeout: int, session: aiohttp.ClientSession
) -> tuple[AsyncWebClient, AsyncWebClient, AsyncWebClient]:
    """The gateway's three clients over one session: (edits and reactions: connection and server
    errors retried; once: no retry at all; aux: the rate-limit handler too)."""
    # slack_sdk formats a debug line (the whole request) on every call unless its logger's *own*
    # level is above DEBUG (it tests ``logger.level``, and a logger's own level is NOTSET):
    # give it the level logging is configured with, so that work happens only when it is shown.
    sdk_logger = logging.getLogger("threadline.slack_sdk")
    sdk_logger.setLevel(max(logging.getLogger().getEffectiveLevel(), logging.INFO))

    def web_client(*handlers: AsyncRetryHandler) -> AsyncWebClient:
        return AsyncWebClient(
            token=token,
            base_url=base_url,
            timeout=timeout,
            session=session,
            logger=sdk_logger,
            retry_handlers=list(handlers),
        )

    edits = web_client(AsyncConnectionErrorRetryHandler(), AsyncServerErrorRetryHandler(max_retry_count=2))
    # No retry handlers: posts (not idempotent: ``post_answer`` retries them itself) and edits
    # that must not land late.
    once = web_client()
    aux = web_client(
        AsyncConnectionErrorRetryHandler(),
        AsyncServerErrorRetryHandler(max_retry_count=2),
        AsyncRateLimitErrorRetryHandler(max_retry_count=2),
    )
    return edits, once, aux


class SlackGateway:
    """Slack calls used by the engine. Create inside a running event loop; ``close()`` at the end."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        timeout: int = 15,
        pacing: Pacing | None = None,
        post_attempts: int = 3,
        retry_base_seconds: float = 1.0,
        thread_page_size: int = 200,
        thread_max_pages: int = 50,
    ) -> None:
        # chat.postMessage: about one message a second per channel (short bursts tolerated).
        self.pacing = pacing or Pacing({})
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
        self.client, self._once_client, self._aux_client = _web_clients(
            token=token, base_url=base_url, timeout=timeout, session=self._session
        )
        self.posts = AnswerPosts(
            self, history=self._aux_client, attempts=post_attempts, retry_base=retry_base_seconds
        )
        self.streams = NativeStreams(self)
        self.threads = ThreadReader(self, page_size=thread_page_size, max_pages=thread_max_pages)
        self.files = FileDownloads(session=self._session, token=token, api_url=base_url)  # url_private

    async def close(self) -> None:
        await self._session.close()

    async def _call(self, method: str, call: Callable[[], Awaitable[AsyncSlackResponse]]) -> dict[str, Any]:
        with mapped(method):
            response = await call()
        data = response.data
        return data if isinstance(data, dict) else {}

    async def call(
        self, method: str, call: Callable[[AsyncWebClient], Awaitable[AsyncSlackResponse]], *, retry: bool
    ) -> dict[str, Any]:
        """One call of ``method``, errors translated; ``retry`` for an idempotent call (connection and
        server errors retried), else it is made once. Pacing and 429s are the caller's."""
        client = self.client if retry else self._once_client
        return await self._call(method, lambda: call(client))

    async def paced(
        self,
        method: str,
        call: Callable[[AsyncWebClient], Awaitable[AsyncSlackResponse]],
        *,
        key: str,
        retry: bool,
        priority: Priority = Priority.FINAL,
        answer_id: str | None = None,
        give_way: asyncio.Event | None = None,
        timeout: float | None = None,
        slot_taken: bool = False,
    ) -> dict[str, Any]:
        """One call of a method Slack rate-limits (``key``: its workspace, or for posts its channel):
        a slot of that method's budget first (see ``Pacing.slot``; ``slot_taken`` when the caller
        took it to choose the newest text once it has it), then the call (``retry`` as for ``call``);
        a 429 pauses that method's budget and is raised: asking again is the caller's choice."""
        if not slot_taken:
            await self.pacing.slot(
                method, key=key, priority=priority, answer_id=answer_id, give_way=give_way, timeout=timeout
            )
        try:
            return await self.call(method, call, retry=retry)
        except SlackError as err:
            await self.pacing.failed(method, key=key, err=err)
            raise

    async def post_message(
        self,
        *,
        channel: str,
        text: str,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        request_id: str | None = None,
        piece: int = 0,
    ) -> str:
        """Post a message (in a thread when ``thread_ts``); returns its ts. ``request_id``/``piece``
        go into the message's metadata, so a post whose response was lost can be found again."""
        metadata = None if request_id is None else answer_metadata(request_id, piece)
        data = await self.paced(
            "chat.postMessage",
            lambda client: client.chat_postMessage(
                channel=channel,
                text=text,
                thread_ts=thread_ts,
                blocks=blocks,
                metadata=metadata,
                **SAFE_MESSAGE,
            ),
            key=f"post:{channel}",
            retry=False,  # not idempotent: posts.post_answer looks for a lost post before posting again
        )
        return str(data["ts"])

    async def edit_slot(
        self,
        *,
        team_id: str,
        priority: Priority = Priority.FINAL,
        answer_id: str | None = None,
        give_way: asyncio.Event | None = None,
        timeout: float | None = None,
    ) -> None:
        """Take a slot of the workspace's chat.update budget (see ``Pacing.slot``)."""
        await self.pacing.slot(
            "chat.update",
            key=team_id,
            priority=priority,
            answer_id=answer_id,
            give_way=give_way,
            timeout=timeout,
        )

    async def update_message(
        self,
        *,
        channel: str,
        ts: str,
        text: str,
        team_id: str,
        blocks: list[dict[str, Any]] | None = None,
        priority: Priority = Priority.FINAL,
        answer_id: str | None = None,
        give_way: asyncio.Event | None = None,
        slot_timeout: float | None = None,
        slot_taken: bool = False,
        retry: bool = True,
    ) -> None:
        """Edit a message, within the workspace's edit budget (``priority``; ``give_way`` and
        ``slot_timeout`` bound the wait for the slot, see ``Pacing.slot``; ``slot_taken`` when the
        caller took it with ``edit_slot`` to choose the newest text once it has it). ``retry=False`` for an
        edit that must not land late (a queue notice: a retried one could arrive after the answer
        that replaced it, on another replica), so neither a server error nor a lost connection is
        tried again. A 429 pauses the workspace's edits and raises."""
        await self.paced(
            "chat.update",
            lambda client: client.chat_update(
                channel=channel, ts=ts, text=text, blocks=blocks, **SAFE_MESSAGE
            ),
            key=team_id,
            retry=retry,
            priority=priority,
            answer_id=answer_id,
            give_way=give_way,
            timeout=slot_timeout,
            slot_taken=slot_taken,
        )

    async def delete_message(self, *, channel: str, ts: str) -> None:
        await self._call("chat.delete", lambda: self._aux_client.chat_delete(channel=channel, ts=ts))

    async def add_reaction(self, *, team_id: str, channel: str, ts: str, name: str) -> None:
        await self._react(
            "reactions.add", team_id, channel=channel, ts=ts, name=name, harmless="already_reacted"
        )

    async def remove_reaction(self, *, team_id: str, channel: str, ts: str, name: str) -> None:
        await self._react(
            "reactions.remove", team_id, channel=channel, ts=ts, name=name, harmless="no_reaction"
        )

    async def _react(
        self, method: str, team_id: str, *, channel: str, ts: str, name: str, harmless: str
    ) -> None:
        """Reactions are paced like edits (Tier 3 per workspace); their 429s pause their budget
        (no retry inside slack_sdk: one retry layer)."""
        add = method == "reactions.add"
        try:
            await self.paced(
                method,
                lambda client: (client.reactions_add if add else client.reactions_remove)(
                    channel=channel, timestamp=ts, name=name
                ),
                key=team_id,
                retry=True,
            )
        except SlackError as err:
            if err.error != harmless:
                raise

    async def is_admin(self, *, user: str) -> bool:
        """True for a workspace admin or owner (``users.info``)."""
        data = await self._call("users.info", lambda: self._aux_client.users_info(user=user))
        info = data.get("user") or {}
        return bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))

    async def post_ephemeral(
        self, *, channel: str, user: str, text: str, thread_ts: str | None = None
    ) -> None:
        await self._call(
            "chat.postEphemeral",
            lambda: self._aux_client.chat_postEphemeral(
                channel=channel, user=user, text=text, thread_ts=thread_ts, parse="none"
            ),
        )

    async def thread_messages(
        self, *, channel: str, thread_ts: str, team_id: str = "", metadata: bool = False
    ) -> list[dict[str, Any]]:
        """The messages of a thread, root first, read to its newest (``bot.gateway.threads``)."""
        read = await self.threads.read(
            channel=channel, thread_ts=thread_ts, team_id=team_id, metadata=metadata
        )
        return read.messages

    async def respond(self, *, response_url: str, payload: dict[str, Any]) -> None:
        """Post to a slash command's ``response_url`` (at most 5 posts in 30 minutes)."""
        body = {"unfurl_links": False, "unfurl_media": False, **payload}
        try:
            async with self._session.post(response_url, json=body) as resp:
                if resp.status >= 400:
                    raise SlackError("response_url", f"http_{resp.status}")
        except aiohttp.ClientError as err:
            raise SlackError("response_url", type(err).__name__) from None
