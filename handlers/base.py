"""What the handlers need from the engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from slack_bolt.context.async_context import AsyncBoltContext

from bot.jobs import Request


class Intake(Protocol):
    async def submit(self, request: Request) -> None:
        """Accept a question (dedup, placeholder, queue)."""
        ...

    async def help(self, request: Request) -> None:
        """Answer an empty question with a short help text."""
        ...


def team_id_of(context: AsyncBoltContext, body: Mapping[str, Any]) -> str:
    return str(context.team_id or body.get("team_id") or context.enterprise_id or "")
