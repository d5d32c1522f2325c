"""``/ask <question>``: ack at once, then answer in the channel (or through response_url)."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.payloads import IncompletePayload, request_from_command
from bot.texts import ASK_USAGE_TEXT, INCOMPLETE_COMMAND_TEXT
from handlers.base import Intake

logger = logging.getLogger(__name__)


def register(app: AsyncApp, intake: Intake) -> None:
    @app.command("/ask")
    async def on_ask(ack: AsyncAck, command: dict[str, Any]) -> None:
        try:
            request = request_from_command(command)
        except IncompletePayload as err:
            logger.warning("/ask arrived without %s: told the asker it was incomplete", err)
            await ack(text=INCOMPLETE_COMMAND_TEXT)  # ephemeral
            return
        if not request.text:
            await ack(text=ASK_USAGE_TEXT)  # ephemeral: only the asker sees it
            return
        await ack()
        await intake.submit(request)

    @app.command(re.compile(r".*"))
    async def on_unknown_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        name = str(command.get("command") or "this command")
        await ack(text=f"I don't know `{name}`. {ASK_USAGE_TEXT}")
