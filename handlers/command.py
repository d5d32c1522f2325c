"""``/ask <question>``: ack at once, then answer in the channel (or through response_url)."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.payloads import request_from_command
from bot.texts import ASK_USAGE_TEXT
from handlers.base import Intake


def register(app: AsyncApp, intake: Intake) -> None:
    @app.command("/ask")
    async def on_ask(ack: AsyncAck, command: dict[str, Any]) -> None:
        if not str(command.get("text") or "").strip():
            await ack(text=ASK_USAGE_TEXT)  # ephemeral: only the asker sees it
            return
        await ack()
        await intake.submit(request_from_command(command))

    @app.command(re.compile(r".*"))
    async def on_unknown_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        name = str(command.get("command") or "this command")
        await ack(text=f"I don't know `{name}`. {ASK_USAGE_TEXT}")
