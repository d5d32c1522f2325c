"""👍/👎 reactions on the bot's answers: feedback, recorded by the engine (metric and log line).

A ``reaction_added`` or ``reaction_removed`` event names the message (channel, ts) but carries no
message metadata, so the engine looks the message up among the answers it remembers. Any other
reaction is ignored.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.payloads import reacted_message
from handlers.base import Intake, team_id_of


def register(app: AsyncApp, intake: Intake) -> None:
    async def on_reaction(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        message = reacted_message(event)
        if message is None:  # a reaction to a file or a file comment, or not said
            return
        channel, ts = message
        await intake.feedback(
            team_id=team_id_of(context, body),
            channel=channel,
            ts=ts,
            user=str(event.get("user") or ""),
            reaction=str(event.get("reaction") or ""),
            removed=event.get("type") == "reaction_removed",
        )

    app.event("reaction_added")(on_reaction)
    app.event("reaction_removed")(on_reaction)
