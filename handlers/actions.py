"""Buttons (block actions): Stop on a streaming answer, Retry on a failed one, Slack's feedback buttons
under a finished native answer. Ack first, always."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from bot.blocks import FEEDBACK_ACTION, RETRY_ACTION, STOP_ACTION
from bot.payloads import feedback_vote
from handlers.base import Intake, team_id_of


def _action_context(body: dict[str, Any], action: dict[str, Any]) -> tuple[str, str, str, str]:
    """(request id, user who pressed, channel, ts of the message with the button)."""
    user = str((body.get("user") or {}).get("id") or "")
    channel = str(
        (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
    )
    message_ts = str(
        (body.get("message") or {}).get("ts") or (body.get("container") or {}).get("message_ts") or ""
    )
    return str(action.get("value") or ""), user, channel, message_ts


def register(app: AsyncApp, intake: Intake) -> None:
    @app.action(STOP_ACTION)
    async def on_stop(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        request_id, user, channel, _ = _action_context(body, action)
        await intake.stop(request_id=request_id, user=user, channel=channel)

    @app.action(RETRY_ACTION)
    async def on_retry(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        request_id, user, channel, message_ts = _action_context(body, action)
        message = body.get("message") or {}
        await intake.retry(
            request_id=request_id,
            user=user,
            channel=channel,
            message_ts=message_ts,
            blocks=list(message.get("blocks") or []),
            text=str(message.get("text") or ""),
        )

    @app.action(FEEDBACK_ACTION)
    async def on_feedback(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        vote = feedback_vote(action)
        _, user, channel, message_ts = _action_context(body, action)
        if vote is not None and user and channel and message_ts:
            await intake.feedback_button(
                team_id=team_id_of(context, body), channel=channel, ts=message_ts, user=user, vote=vote
            )

    @app.action(re.compile(r".*"))
    async def on_other_action(ack: AsyncAck) -> None:
        await ack()
