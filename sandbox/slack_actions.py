"""Button presses and message shortcuts as Slack delivers them: a ``block_actions`` interactivity
payload built from the button as it is on the message (a ``button`` in an ``actions`` block or a
section's accessory, a side of ``feedback_buttons`` or an ``icon_button`` in a ``context_actions``
block), and a message shortcut's ``message_action`` payload (``shortcut_payload``).

The fake Slack (``ActionsMixin``) and the sandbox's page both build their payloads here, so a test's
click and a person's click reach the app in the same shape::

    payload = slack.feedback_action("C1", answer_ts, positive=True, user="U_ALICE")
    status, _ = await slack.send_action(app_url, payload)   # signed, form-encoded, as Slack posts it
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sandbox.slack_model import JSONDict, Message

__all__ = ["ActionsMixin", "ButtonNotFound", "find_action"]


class ButtonNotFound(LookupError):
    """No such button (or feedback button side) on the message."""


def _elements(blocks: list[Any]) -> Iterator[tuple[str, JSONDict]]:
    """(block_id, element) for every interactive element, in order. A block without a ``block_id`` gets
    ``<type>-<index>`` (Slack generates one; this one is stable, so a page can name it)."""
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        block_id = str(block.get("block_id") or f"{block.get('type')}-{i}")
        kind = block.get("type")
        if kind in ("actions", "context_actions"):
            for element in block.get("elements") or []:
                if isinstance(element, dict):
                    yield block_id, element
        elif kind == "section" and isinstance(block.get("accessory"), dict):
            yield block_id, block["accessory"]


def find_action(
    blocks: list[Any] | None,
    *,
    action_id: str | None = None,
    block_id: str | None = None,
    value: str | None = None,
    kind: str | None = None,
) -> JSONDict:
    """The ``actions[0]`` of the payload a press of that element sends (without ``action_ts``).

    ``value`` picks the side of ``feedback_buttons`` (its ``positive_button`` or ``negative_button``
    value) or a button by value; ``kind`` narrows to an element type. Raises ``ButtonNotFound``.
    """
    for this_block_id, element in _elements(blocks or []):
        element_kind = element.get("type")
        if block_id is not None and this_block_id != block_id:
            continue
        if action_id is not None and element.get("action_id") != action_id:
            continue
        if kind is not None and element_kind != kind:
            continue
        action: JSONDict = {"type": element_kind, "block_id": this_block_id}
        if element.get("action_id") is not None:
            action["action_id"] = element["action_id"]
        if element_kind == "feedback_buttons":
            sides = [element.get("positive_button"), element.get("negative_button")]
            side = next(
                (s for s in sides if isinstance(s, dict) and (value is None or s.get("value") == value)), None
            )
            if side is None:
                continue
            action["text"] = side.get("text")
            action["value"] = side.get("value")
        else:
            if value is not None and element.get("value") != value:
                continue
            for name in ("text", "value", "style"):
                if name in element:
                    action[name] = element[name]
        return action
    raise ButtonNotFound(f"no element action_id={action_id!r} block_id={block_id!r} value={value!r}")


class ActionsMixin:
    """``block_actions`` payloads for the fake Slack's messages (mixed into ``FakeSlack``)."""

    if TYPE_CHECKING:
        messages: dict[tuple[str, str], Message]
        team_id: str
        users: dict[str, JSONDict]
        last_action_response_key: str | None
        _key_counter: itertools.count[int]

        def response_url(self, key: str = "r1") -> str: ...

        def thread(self, channel: str, thread_ts: str, *, include_deleted: bool = False) -> list[Message]: ...

    def block_actions_payload(
        self,
        msg: Message,
        action: JSONDict,
        *,
        user: str,
        channel_name: str | None = None,
        response_url: str | None = None,
    ) -> JSONDict:
        """The interactivity payload Slack posts when ``user`` presses ``action`` on ``msg``."""
        if response_url is None:
            key = f"act{next(self._key_counter)}"
            self.last_action_response_key = key
            response_url = self.response_url(key)
        name = str(self.users.get(user, {}).get("name") or user.lower())
        container: JSONDict = {
            "type": "message",
            "message_ts": msg.ts,
            "channel_id": msg.channel,
            "is_ephemeral": msg.ephemeral_user is not None,
        }
        if msg.thread_ts is not None:
            container["thread_ts"] = msg.thread_ts
        channel: JSONDict = {"id": msg.channel}
        if channel_name is not None:
            channel["name"] = channel_name
        payload: JSONDict = {
            "type": "block_actions",
            "user": {"id": user, "username": name, "name": name, "team_id": self.team_id},
            "container": container,
            "trigger_id": f"{next(self._key_counter)}.{self.team_id}.{uuid.uuid4().hex}",
            "channel": channel,
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
        }
        if msg.ephemeral_user is None:
            payload["message"] = msg.to_api()
        return payload

    def shortcut_payload(
        self,
        channel: str,
        ts: str,
        *,
        user: str = "U_ALICE",
        callback_id: str = "summarize_thread",
        channel_name: str | None = None,
        response_url: str | None = None,
    ) -> JSONDict:
        """The ``message_action`` payload Slack posts when ``user`` picks the message shortcut
        ``callback_id`` on the message ``ts`` (its response URL's key: ``last_action_response_key``).
        The message is as ``conversations.replies`` shows it: a reply carries its ``thread_ts``, a
        parent with replies its own ts as ``thread_ts`` and its ``reply_count``."""
        msg = self._pressable(channel, ts)
        if msg.ephemeral_user is not None:
            raise ButtonNotFound(f"{channel}/{ts} is ephemeral: it has no message shortcuts")
        if response_url is None:
            key = f"act{next(self._key_counter)}"
            self.last_action_response_key = key
            response_url = self.response_url(key)
        name = str(self.users.get(user, {}).get("name") or user.lower())
        replies = 0 if msg.thread_ts is not None else len(self.thread(channel, msg.ts)) - 1
        return {
            "type": "message_action",
            "callback_id": callback_id,
            "trigger_id": f"{next(self._key_counter)}.{self.team_id}.{uuid.uuid4().hex}",
            "action_ts": f"{time.time():.6f}",
            "message_ts": msg.ts,
            "response_url": response_url,
            "message": msg.to_api(reply_count=replies or None),
            "user": {"id": user, "username": name, "name": name, "team_id": self.team_id},
            "channel": {"id": channel, "name": channel_name or channel.lower()},
        }

    def _pressable(self, channel: str, ts: str) -> Message:
        msg = self.messages.get((channel, ts))
        if msg is None or msg.deleted:
            raise ButtonNotFound(f"no message {channel}/{ts}")
        return msg

    def button_action(
        self,
        channel: str,
        ts: str,
        action_id: str,
        *,
        user: str = "U_ALICE",
        block_id: str | None = None,
        value: str | None = None,
    ) -> JSONDict:
        """The ``block_actions`` payload of ``user`` pressing the button ``action_id`` on a message."""
        msg = self._pressable(channel, ts)
        action = find_action(msg.blocks, action_id=action_id, block_id=block_id, value=value)
        return self.block_actions_payload(msg, action, user=user)

    def feedback_action(
        self,
        channel: str,
        ts: str,
        *,
        positive: bool = True,
        user: str = "U_ALICE",
        action_id: str | None = None,
    ) -> JSONDict:
        """The ``block_actions`` payload of ``user`` pressing 👍 (``positive``) or 👎 in the message's
        ``feedback_buttons`` (for a streamed answer: the blocks its ``chat.stopStream`` sent)."""
        msg = self._pressable(channel, ts)
        for block_id, element in _elements(msg.blocks or []):
            if element.get("type") != "feedback_buttons":
                continue
            if action_id is not None and element.get("action_id") != action_id:
                continue
            side = element.get("positive_button" if positive else "negative_button")
            if not isinstance(side, dict):
                break
            action: JSONDict = {"type": "feedback_buttons", "block_id": block_id}
            if element.get("action_id") is not None:
                action["action_id"] = element["action_id"]
            action.update(text=side.get("text"), value=side.get("value"))
            return self.block_actions_payload(msg, action, user=user)
        raise ButtonNotFound(f"no feedback_buttons on {channel}/{ts}")
