"""Direct messages: every message a person sends the bot is a question, answered in its thread."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.jobs import Source
from bot.payloads import is_user_message
from handlers.base import Intake, question_in


def register(app: AsyncApp, intake: Intake) -> None:
    @app.event("message")
    async def on_message(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        # Only DMs: channel messages reach the bot as app_mention. Edits, deletions, joins and bot
        # messages (our own included) are ignored quietly.
        if event.get("channel_type") != "im" or not is_user_message(event, context.bot_user_id):
            return
        request = question_in(event, body, context, Source.DM)
        if request is None:
            return
        if request.asks:  # text, or files to read
            await intake.submit(request)
        else:
            await intake.help(request)
