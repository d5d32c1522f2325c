"""Slack's native streams (``chat.startStream`` / ``chat.appendStream`` / ``chat.stopStream``), the
thread status (``assistant.threads.setStatus``) and the Markdown edit that finishes a streamed message
Slack ended early. Part of the gateway: every call takes a slot of its method's budget first
(``bot.gateway.pacing``; starts, stops and appends per workspace, the status per thread) and a 429
pauses that method's budget only, then raises. No call is retried here: an append or a start is not
idempotent (a retry after a lost answer would show its text twice), and the view decides what a
failure means (fall back to edits, continue in a new message, finish with an edit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.constants import SAFE_MESSAGE
from bot.ratelimit.base import Priority

if TYPE_CHECKING:
    from bot.gateway.client import SlackGateway

Chunk = dict[str, Any]
FALLBACK_TEXT_LIMIT = 3_900  # chat.update's ``text`` (the notification fallback) stays under 4,000


def markdown_chunk(text: str) -> Chunk:
    return {"type": "markdown_text", "text": text}


def markdown_blocks(markdown: str) -> list[dict[str, Any]]:
    """Markdown as ``markdown`` blocks (12,000 characters in all per message: one block is enough)."""
    return [{"type": "markdown", "text": markdown}] if markdown.strip() else []


def status_key(channel: str, thread_ts: str) -> str:
    return f"status:{channel}:{thread_ts}"


class NativeStreams:
    def __init__(self, gateway: SlackGateway) -> None:
        self._gateway = gateway

    async def _paced(
        self,
        method: str,
        key: str,
        call: Callable[[AsyncWebClient], Awaitable[AsyncSlackResponse]],
        *,
        answer_id: str | None = None,
        timeout: float | None = None,
        retry: bool = False,
        slot_taken: bool = False,
    ) -> dict[str, Any]:
        return await self._gateway.paced(
            method, call, key=key, retry=retry, answer_id=answer_id, timeout=timeout, slot_taken=slot_taken
        )

    async def start(
        self,
        *,
        team_id: str,
        channel: str,
        thread_ts: str,
        chunks: list[Chunk],
        recipient_user_id: str | None = None,
        recipient_team_id: str | None = None,
        answer_id: str | None = None,
    ) -> str:
        """Start a stream in the thread with its first content; returns the message's ts.
        ``answer_id`` names a start reserved for it (``Pacing.reserve``)."""
        data = await self._paced(
            "chat.startStream",
            team_id,
            lambda c: c.chat_startStream(
                channel=channel,
                thread_ts=thread_ts,
                chunks=chunks,
                recipient_user_id=recipient_user_id,
                recipient_team_id=recipient_team_id,
            ),
            answer_id=answer_id,
        )
        return str(data["ts"])

    async def append_slot(self, *, team_id: str, give_way: asyncio.Event | None) -> None:
        """Wait for a slot of the workspace's append budget; raises ``GaveWay`` when ``give_way`` is
        set first (the stream is ending: its stop carries the text instead). Taken before the text
        is chosen, so the append carries the newest text."""
        await self._gateway.pacing.slot(
            "chat.appendStream",
            key=team_id,
            priority=Priority.FIRST_WORDS,  # every append is equal; the budget's whole window is theirs
            give_way=give_way,
        )

    async def append(self, *, team_id: str, channel: str, ts: str, chunks: list[Chunk]) -> None:
        """Append to a live stream (its slot taken with ``append_slot``)."""
        await self._paced(
            "chat.appendStream",
            team_id,
            lambda c: c.chat_appendStream(channel=channel, ts=ts, chunks=chunks),
            slot_taken=True,
        )

    async def stop(
        self,
        *,
        team_id: str,
        channel: str,
        ts: str,
        chunks: list[Chunk] | None = None,
        blocks: list[dict[str, Any]] | None = None,
        answer_id: str | None = None,
    ) -> None:
        """End a stream, with its last content and the blocks shown under it (buttons)."""
        await self._paced(
            "chat.stopStream",
            team_id,
            lambda c: c.chat_stopStream(channel=channel, ts=ts, chunks=chunks or None, blocks=blocks),
            answer_id=answer_id,
        )

    async def set_status(
        self, *, channel: str, thread_ts: str, status: str, timeout: float | None = None
    ) -> None:
        """Show ``status`` under the thread ("" clears it); paced per thread."""
        await self._paced(
            "assistant.threads.setStatus",
            status_key(channel, thread_ts),
            lambda c: c.assistant_threads_setStatus(channel_id=channel, thread_ts=thread_ts, status=status),
            timeout=timeout,
            retry=True,
        )

    async def update_markdown(
        self,
        *,
        team_id: str,
        channel: str,
        ts: str,
        markdown: str,
        blocks: list[dict[str, Any]] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Replace what a streamed message shows (a stream Slack ended: its text finished, a note or a
        button added) with ``markdown``, within the workspace's edit budget, as a final edit. With
        ``blocks`` (buttons) the Markdown goes in a ``markdown`` block above them, since
        ``markdown_text`` cannot be combined with blocks."""
        if blocks:
            fallback = markdown[:FALLBACK_TEXT_LIMIT]
            every = markdown_blocks(markdown) + blocks

            def call(c: AsyncWebClient) -> Awaitable[AsyncSlackResponse]:
                return c.chat_update(channel=channel, ts=ts, text=fallback, blocks=every, **SAFE_MESSAGE)

        else:

            def call(c: AsyncWebClient) -> Awaitable[AsyncSlackResponse]:
                return c.chat_update(channel=channel, ts=ts, markdown_text=markdown)

        await self._paced("chat.update", team_id, call, timeout=timeout, retry=True)
