"""Block Kit for answers with a button (pure functions).

A message with a Stop or Retry button carries the answer in its blocks: ``section`` blocks of at
most 3,000 characters with ``mrkdwn`` text and ``"verbatim": true`` (so Slack does not parse
``@here`` or URLs in it), then an ``actions`` block. Every update sends all its blocks; an update
without blocks removes them (and the button).
"""

from __future__ import annotations

from typing import Any, Literal

from bot.constants import SECTION_TEXT_LIMIT
from bot.split import split_message

STOP_ACTION = "threadline_stop"
RETRY_ACTION = "threadline_retry"
ACTIONS_BLOCK = "threadline_actions"
FEEDBACK_ACTION = "threadline_feedback"
FEEDBACK_BLOCK = "threadline_feedback"

Button = Literal["stop", "retry"]


def button_element(button: Button, request_id: str) -> dict[str, Any]:
    if button == "stop":
        return {
            "type": "button",
            "action_id": STOP_ACTION,
            "text": {"type": "plain_text", "text": "Stop"},
            "style": "danger",
            "value": request_id,
        }
    return {
        "type": "button",
        "action_id": RETRY_ACTION,
        "text": {"type": "plain_text", "text": "Retry"},
        "style": "primary",
        "value": request_id,
    }


def answer_blocks(text: str, *, button: Button, request_id: str) -> list[dict[str, Any]]:
    """The answer as verbatim mrkdwn sections, followed by the button."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": section, "verbatim": True}}
        for section in split_message(text, limit=SECTION_TEXT_LIMIT)
        if section.strip()
    ]
    blocks.append(actions_block(button, request_id))
    return blocks


def actions_block(button: Button, request_id: str) -> dict[str, Any]:
    return {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": [button_element(button, request_id)]}


def feedback_block(request_id: str) -> dict[str, Any]:
    """Slack's feedback buttons under a finished native answer; a click is a vote ("up"/"down")."""
    return {
        "type": "context_actions",
        "block_id": FEEDBACK_BLOCK,
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK_ACTION,
                "positive_button": {
                    "text": {"type": "plain_text", "text": "Good answer"},
                    "value": f"up:{request_id}",
                    "accessibility_label": "Mark this answer as good",
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "Bad answer"},
                    "value": f"down:{request_id}",
                    "accessibility_label": "Mark this answer as bad",
                },
            }
        ],
    }
