"""👍/👎 reactions on the bot's answers: feedback, recorded by the engine (metric and log line).

A ``reaction_added`` or ``reaction_removed`` event names the message (channel, ts) but carries no
message metadata, so the engine looks the message up among the answers it remembers. Any other
reaction is ignored.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from handlers.base import Intake, team_id_of


def register(app: AsyncApp, intake: Intake) -> None:
    async def on_reaction(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message" or not item.get("ts") or not item.get("channel"):
            return
        await intake.feedback(
            team_id=team_id_of(context, body),
            channel=str(item["channel"]),
            ts=str(item["ts"]),
            user=str(event.get("user") or ""),
            reaction=str(event.get("reaction") or ""),
            removed=event.get("type") == "reaction_removed",
        )

    app.event("reaction_added")(on_reaction)
    app.event("reaction_removed")(on_reaction)
