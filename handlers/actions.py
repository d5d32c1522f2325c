"""Buttons (block actions): Stop on a streaming answer, Retry on a failed one, Slack's feedback buttons
under a finished native answer. Ack first, always."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from bot.blocks import FEEDBACK_ACTION, RETRY_ACTION, STOP_ACTION
from bot.payloads import ButtonPress, IncompletePayload, button_press, feedback_vote
from handlers.base import Intake, team_id_of

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
                text=press.text,
            )

    @app.action(FEEDBACK_ACTION)
    async def on_feedback(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        vote = feedback_vote(action)
        press = _press("feedback", body, action, needs_message=True)
        if vote is not None and press is not None and press.message_ts is not None:
            await intake.feedback_button(
                team_id=team_id_of(context, body),
                channel=press.channel,
                ts=press.message_ts,
                user=press.user,
                vote=vote,
            )

    @app.action(re.compile(r".*"))
    async def on_other_action(ack: AsyncAck) -> None:
        await ack()
