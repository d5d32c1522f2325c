"""Direct messages: every message a person sends the bot is a question, answered in its thread."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.jobs import Source
from bot.payloads import is_user_message
from handlers.base import Intake, question_in


async def _in_a_dm(event: dict[str, Any]) -> bool:
    return event.get("channel_type") == "im"


def register(app: AsyncApp, intake: Intake) -> None:
    # Bolt runs the first listener that matches an event: this one takes DMs only, and channel
    # messages go on to handlers.thread.
    @app.event("message", matchers=[_in_a_dm])
    async def on_message(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        # Edits, deletions, joins and bot messages (our own included) are ignored quietly.
        if not is_user_message(event, context.bot_user_id):
            return
        request = question_in(event, body, context, Source.DM)
        if request is None:
            return
        if request.asks:  # text, or files to read
            await intake.submit(request)
        else:
            await intake.help(request)
