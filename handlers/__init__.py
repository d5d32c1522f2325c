"""Thin Slack-facing listeners: each parses a payload, acks, and hands a ``Request`` to the intake.

Handlers never import ``openai`` or ``redis``: the engine behind ``Intake`` owns all slow work.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import actions, agent, command, dm, feedback, ignored, mention, shortcut, thread
from handlers.base import Intake


def register_all(app: AsyncApp, intake: Intake) -> None:
    mention.register(app, intake)
    dm.register(app, intake)
    thread.register(app, intake)
    command.register(app, intake)
    actions.register(app, intake)
    feedback.register(app, intake)
    agent.register(app, intake)
    shortcut.register(app, intake)
    ignored.register(app)  # last: the catch-all for everything the others do not handle


__all__ = ["Intake", "register_all"]
