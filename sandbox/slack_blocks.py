"""The Block Kit rules the fake Slack enforces: the ones a bot that streams into blocks, adds buttons or
closes a native stream with feedback buttons can break. Errors read like Slack's (``invalid_blocks`` with
``[ERROR] … [json-pointer:…]`` messages)."""

from __future__ import annotations

from typing import Any

from sandbox.slack_model import ApiError, JSONDict

__all__ = [
    "MARKDOWN_TEXT_LIMIT",
    "MAX_BLOCKS",
    "SECTION_FIELD_LIMIT",
    "SECTION_TEXT_LIMIT",
    "validate_blocks",
]

MARKDOWN_TEXT_LIMIT = 12_000
SECTION_TEXT_LIMIT = 3_000
SECTION_FIELD_LIMIT = 2_000
MAX_BLOCKS = 50
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2_000
ACTION_ID_LIMIT = 255
CONTEXT_ACTIONS_MAX = 5  # context_actions: 1 to 5 feedback_buttons / icon_button elements


def validate_blocks(blocks: Any) -> None:
    """Raise ``invalid_blocks_format`` / ``invalid_blocks`` as Slack would for ``blocks``."""
    if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
        raise ApiError("invalid_blocks_format")
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    markdown_total = 0
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids:
                errors.append(f"duplicate block_id [json-pointer:{where}/block_id]")
            block_ids.add(block_id)
        kind = block["type"]
        if kind == "section":
            text = block.get("text")
            fields = block.get("fields")
            if text is None and not fields:
                errors.append(f"must provide text or fields [json-pointer:{where}]")
            if text is not None:
                errors += _text_object_errors(text, SECTION_TEXT_LIMIT, f"{where}/text")
            for j, f in enumerate(fields or []):
                errors += _text_object_errors(f, SECTION_FIELD_LIMIT, f"{where}/fields/{j}")
        elif kind == "header":
            errors += _text_object_errors(block.get("text"), 150, f"{where}/text", plain_only=True)
        elif kind == "markdown":
            markdown_total += len(str(block.get("text", "")))
        elif kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25:
                errors.append(f"must have 1 to 25 elements [json-pointer:{where}/elements]")
            for j, element in enumerate(elements):
                errors += _action_id_errors(element, action_ids, f"{where}/elements/{j}")
                if isinstance(element, dict) and element.get("type") == "button":
                    errors += _text_object_errors(
                        element.get("text"), BUTTON_TEXT_LIMIT, f"{where}/elements/{j}/text", plain_only=True
                    )
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > 10:
                errors.append(f"must have 1 to 10 elements [json-pointer:{where}/elements]")
        elif kind == "context_actions":
            errors += _context_actions_errors(block, action_ids, where)
    if markdown_total > MARKDOWN_TEXT_LIMIT:
        errors.append(f"markdown blocks exceed {MARKDOWN_TEXT_LIMIT} characters [json-pointer:/blocks]")
    if errors:
        raise ApiError(
            "invalid_blocks",
            errors=errors,
            response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
        )


def _action_id_errors(element: Any, seen: set[str], where: str) -> list[str]:
    action_id = element.get("action_id") if isinstance(element, dict) else None
    if action_id is None:
        return []
    if not isinstance(action_id, str) or not action_id or len(action_id) > ACTION_ID_LIMIT:
        return [f"must be 1 to {ACTION_ID_LIMIT} characters [json-pointer:{where}/action_id]"]
    if action_id in seen:
        return [f"duplicate action_id [json-pointer:{where}/action_id]"]
    seen.add(action_id)
    return []


def _context_actions_errors(block: JSONDict, action_ids: set[str], where: str) -> list[str]:
    """``context_actions``: 1 to 5 elements, each ``feedback_buttons`` (a positive and a negative button,
    each with plain text of at most 75 characters and a value of at most 2,000) or ``icon_button``."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements or len(elements) > CONTEXT_ACTIONS_MAX:
        return [f"must have 1 to {CONTEXT_ACTIONS_MAX} elements [json-pointer:{where}/elements]"]
    errors: list[str] = []
    for j, element in enumerate(elements):
        at = f"{where}/elements/{j}"
        if not isinstance(element, dict):
            errors.append(f"must be an object [json-pointer:{at}]")
            continue
        errors += _action_id_errors(element, action_ids, at)
        kind = element.get("type")
        if kind == "feedback_buttons":
            for side in ("positive_button", "negative_button"):
                button = element.get(side)
                if not isinstance(button, dict):
                    errors.append(f"must provide {side} [json-pointer:{at}/{side}]")
                    continue
                errors += _text_object_errors(
                    button.get("text"), BUTTON_TEXT_LIMIT, f"{at}/{side}/text", plain_only=True
                )
                errors += _value_errors(button.get("value"), f"{at}/{side}/value", required=True)
        elif kind == "icon_button":
            if not isinstance(element.get("icon"), str) or not element["icon"]:
                errors.append(f"must provide icon [json-pointer:{at}/icon]")
            errors += _text_object_errors(
                element.get("text"), BUTTON_TEXT_LIMIT, f"{at}/text", plain_only=True
            )
            errors += _value_errors(element.get("value"), f"{at}/value", required=False)
        else:
            errors.append(f"must be one of feedback_buttons, icon_button [json-pointer:{at}/type]")
    return errors


def _value_errors(value: Any, where: str, *, required: bool) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, str) or not value:
        return [f"must be a non-empty string [json-pointer:{where}]"]
    if len(value) > BUTTON_VALUE_LIMIT:
        return [f"must be less than {BUTTON_VALUE_LIMIT + 1} characters [json-pointer:{where}]"]
    return []


def _text_object_errors(obj: Any, limit: int, where: str, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [f"must be a text object [json-pointer:{where}]"]
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in allowed:
        return [f"must be one of {allowed} [json-pointer:{where}/type]"]
    if not obj["text"]:
        return [f"must be more than 0 characters [json-pointer:{where}/text]"]
    if len(obj["text"]) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []
