"""Everything else Slack may send (other event types): acked and ignored quietly.

Without this, Bolt answers 404 for an unhandled event, and Slack would retry it.
"""

from __future__ import annotations

import re

from slack_bolt.async_app import AsyncApp


def register(app: AsyncApp) -> None:
    @app.event(re.compile(r".*"))
    async def on_other_event() -> None:
        return None
