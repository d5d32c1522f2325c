"""Buttons (block actions): Stop on a streaming answer, Retry on a failed one. Ack first, always."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.blocks import RETRY_ACTION, STOP_ACTION
from bot.payloads import ButtonPress, IncompletePayload, button_press
from handlers.base import Intake

logger = logging.getLogger(__name__)


def _press(
    name: str, body: dict[str, Any], action: dict[str, Any], *, needs_message: bool
) -> ButtonPress | None:
    """The press, or ``None`` (and one log line) when the payload lacks what the button needs."""
    try:
        press = button_press(body, action)
        if needs_message and press.message_ts is None:
            raise IncompletePayload(["message ts"])
    except IncompletePayload as err:
        logger.warning("a %s press arrived without %s: ignored", name, err)
        return None
    return press


def register(app: AsyncApp, intake: Intake) -> None:
    @app.action(STOP_ACTION)
    async def on_stop(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        press = _press("Stop", body, action, needs_message=False)
        if press is not None:
            await intake.stop(request_id=press.request_id, user=press.user, channel=press.channel)

    @app.action(RETRY_ACTION)
    async def on_retry(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        press = _press("Retry", body, action, needs_message=True)
        if press is not None and press.message_ts is not None:
            await intake.retry(
                request_id=press.request_id,
                user=press.user,
                channel=press.channel,
                message_ts=press.message_ts,
                blocks=press.blocks,
            )

    @app.action(re.compile(r".*"))
    async def on_other_action(ack: AsyncAck) -> None:
        await ack()
