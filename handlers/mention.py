"""``@Threadline …`` in a channel: answer in the thread of the mention."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.jobs import Source
from bot.payloads import is_user_message
from handlers.base import Intake, question_in


def register(app: AsyncApp, intake: Intake) -> None:
    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        # Runs before the ack (process_before_response): fast, and queued before Slack hears back.
        if not is_user_message(event, context.bot_user_id):
            return
        request = question_in(event, body, context, Source.MENTION)
        if request is None:
            return
        if request.asks:  # text, or files to read
            await intake.submit(request)
        else:
            await intake.help(request)
