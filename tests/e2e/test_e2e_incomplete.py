"""Correctly signed questions with a field missing (issue 14, item 7), against the real app.

Slack always sends these fields; when one is missing the asker of a slash command is told at once
that the command arrived incomplete, and an event nobody can be answered in is logged in one line:
never a KeyError after the ack, a traceback, or "I don't know `/ask`" three seconds later.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.blocks import RETRY_ACTION, STOP_ACTION
from bot.texts import INCOMPLETE_COMMAND_TEXT
from tests.conftest import Bot
from tests.e2e.test_inbound_http import FORM, post_signed, records_from
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack


@pytest.mark.parametrize("missing", ["channel_id", "user_id"])
async def test_ask_without_channel_or_user_is_told_it_arrived_incomplete(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot, caplog: pytest.LogCaptureFixture, missing: str
) -> None:
    caplog.set_level(logging.DEBUG)
    fields = slack.command_payload(text="what is a token bucket?")
    del fields[missing]
    sent = time.monotonic()
    status, text = await post_signed(slack, bot.url, urlencode(fields).encode(), FORM)
    assert status == 200 and time.monotonic() - sent < 1.0
    assert text == INCOMPLETE_COMMAND_TEXT  # a text-only ack: Slack shows it to the asker alone
    warnings = records_from(caplog, logging.WARNING)
    assert len(warnings) == 1 and missing in warnings[0].getMessage(), [r.getMessage() for r in warnings]
    assert not any(r.exc_info for r in caplog.records)
    assert not model.requests


@pytest.mark.parametrize(
    "change",
    [
        {"channel": None},
        {"channel": ""},
        {"channel": {"id": "C1"}},
        {"ts": ["1.0"]},
        {"thread_ts": 5},
    ],
)
@pytest.mark.parametrize("kind", ["mention", "dm"])
async def test_an_event_with_a_field_missing_is_logged_in_one_line(
    slack: FakeSlack,
    model: FakeOpenAI,
    bot: Bot,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, object],
    kind: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    event = slack.mention_event("C1", "hi") if kind == "mention" else slack.dm_event("D1", "hi")
    event.update(change)
    if change.get("channel") is None:
        del event["channel"]
    status, _ = await slack.send_event(bot.url, event)
    assert status == 200  # acked: Slack must not retry what can never be answered
    await slack.wait_for(lambda: bool(records_from(caplog, logging.WARNING)), 5)
    warnings = records_from(caplog, logging.WARNING)
    assert len(warnings) == 1 and not warnings[0].exc_info, [r.getMessage() for r in warnings]
    assert not any(r.levelno >= logging.ERROR or r.exc_info for r in caplog.records)
    assert not model.requests and not slack.calls_to("chat.postMessage")


def stop_press(slack: FakeSlack, action_id: str = STOP_ACTION) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": "U_ALICE", "username": "alice", "team_id": slack.team_id},
        "channel": {"id": "C1", "name": "general"},
        "container": {"type": "message", "message_ts": "1.0", "channel_id": "C1"},
        "message": {"ts": "1.0", "text": "an answer", "blocks": [], "user": slack.bot_user_id},
        "actions": [
            {"action_id": action_id, "block_id": "threadline_actions", "value": "r-1", "type": "button"}
        ],
        "trigger_id": "1.2.3",
    }


def without(payload: dict[str, Any], *paths: str) -> dict[str, Any]:
    payload = copy.deepcopy(payload)
    for path in paths:
        *parents, key = path.split(".")
        target: Any = payload
        for step in parents:
            target = target[int(step)] if step.isdigit() else target[step]
        del target[key]
    return payload


@pytest.mark.parametrize(
    ("action_id", "change"),
    [
        (STOP_ACTION, {"user": "U_ALICE"}),  # a user id where Slack sends an object
        (STOP_ACTION, {"drop": ["user"]}),
        (STOP_ACTION, {"drop": ["actions.0.value"]}),
        (STOP_ACTION, {"drop": ["channel", "container.channel_id"]}),
        (RETRY_ACTION, {"drop": ["message", "container.message_ts"]}),
        (RETRY_ACTION, {"drop": ["container.message_ts"], "message": "an answer"}),
    ],
)
async def test_a_button_press_with_a_field_missing_is_acked_and_logged_in_one_line(
    slack: FakeSlack,
    model: FakeOpenAI,
    bot: Bot,
    caplog: pytest.LogCaptureFixture,
    action_id: str,
    change: dict[str, Any],
) -> None:
    caplog.set_level(logging.DEBUG)
    payload = without(stop_press(slack, action_id), *change.pop("drop", []))
    payload.update(change)
    status, _ = await slack.send_action(bot.url, payload)
    assert status == 200
    await slack.wait_for(lambda: bool(records_from(caplog, logging.WARNING)), 5)
    warnings = records_from(caplog, logging.WARNING)
    assert len(warnings) == 1 and "press arrived without" in warnings[0].getMessage(), warnings
    assert not any(r.exc_info for r in caplog.records)
    assert not slack.calls_to("chat.update") and not slack.calls_to("chat.postEphemeral")


@pytest.mark.parametrize(
    "item", ["C1", None, {"type": "message", "channel": "C1"}, {"type": "file", "file": "F1"}]
)
async def test_a_reaction_to_no_message_is_ignored_quietly(
    slack: FakeSlack, model: FakeOpenAI, bot: Bot, caplog: pytest.LogCaptureFixture, item: object
) -> None:
    caplog.set_level(logging.DEBUG)
    event = {"type": "reaction_added", "user": "U_ALICE", "reaction": "+1", "item": item, "event_ts": "2.0"}
    status, _ = await slack.send_event(bot.url, event)
    assert status == 200
    # a well-formed reaction after it is handled (the listener ran, in order), with nothing logged
    await slack.send_event(bot.url, {**event, "item": {"type": "message", "channel": "C1", "ts": "1.0"}})
    assert not records_from(caplog, logging.WARNING), [r.getMessage() for r in caplog.records]
