"""Interactivity (block actions). Buttons arrive with the failure work; until then, ack quietly."""

from __future__ import annotations

import re

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from handlers.base import Intake


def register(app: AsyncApp, intake: Intake) -> None:
    @app.action(re.compile(r".*"))
    async def on_unknown_action(ack: AsyncAck) -> None:
        await ack()
