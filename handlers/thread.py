"""Replies in a channel thread (``message.channels``, ``message.groups``): a reply without a mention
in a thread the bot answered is a follow-up question. The intake decides whether the bot answered
there; a reply that mentions the bot is answered as its ``app_mention`` (one message, one answer:
both deliveries share the dedup key of the message)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.jobs import Source
from bot.payloads import FOLLOWUP_CHANNEL_TYPES, is_followup
from handlers.base import Intake, question_in


async def _in_a_channel(event: dict[str, Any]) -> bool:
    return event.get("channel_type") in FOLLOWUP_CHANNEL_TYPES


def register(app: AsyncApp, intake: Intake) -> None:
    @app.event("message", matchers=[_in_a_channel])
    async def on_channel_message(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        # Runs before the ack for every message in every channel the bot is in: top-level messages,
        # edits, bots and replies addressed to someone are dropped here without any I/O.
        if not is_followup(event, context.bot_user_id):
            return
        request = question_in(event, body, context, Source.FOLLOWUP)
        if request is None or not request.asks:  # nothing to answer (a help text would be noise)
            return
        await intake.submit_followup(request)
