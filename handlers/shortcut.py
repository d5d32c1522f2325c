"""The "Summarize thread" message shortcut (``message_action``): ack at once, then hand a summary
request to the intake. The answer goes into the message's thread like any other, with the same queue,
access rules and limits; a refusal or a channel the bot cannot post in is told privately."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from bot.constants import SUMMARIZE_SHORTCUT
from bot.payloads import IncompletePayload, request_from_shortcut
from handlers.base import Intake, team_id_of

logger = logging.getLogger(__name__)


def register(app: AsyncApp, intake: Intake) -> None:
    @app.message_shortcut(SUMMARIZE_SHORTCUT)  # a global shortcut of that name goes to the one below
    async def on_summarize(ack: AsyncAck, shortcut: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        try:
            request = request_from_shortcut(shortcut, team_id=team_id_of(context, shortcut))
        except IncompletePayload as err:
            logger.warning("a %s shortcut arrived without %s: ignored", SUMMARIZE_SHORTCUT, err)
            return
        await intake.submit(request)

    @app.shortcut(re.compile(r".*"))
    async def on_other_shortcut(ack: AsyncAck) -> None:
        await ack()
