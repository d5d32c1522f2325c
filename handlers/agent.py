"""Slack's own stop control on a native stream (``agent_session_stopped``): the person pressed it, Slack
ended the streams it names, and the generation must be cancelled by us. Only the asker (or an admin)
may stop an answer; the engine checks that."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.payloads import streams_stopped
from handlers.base import Intake


def register(app: AsyncApp, intake: Intake) -> None:
    @app.event("agent_session_stopped")
    async def on_stopped(event: dict[str, Any]) -> None:
        stopped = streams_stopped(event)
        if stopped is not None:
            await intake.stop_streams(
                channel=stopped.channel,
                thread_ts=stopped.thread_ts,
                message_ts=stopped.message_ts,
                user=stopped.user,
            )
