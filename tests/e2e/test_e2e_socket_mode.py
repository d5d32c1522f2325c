"""Socket Mode end to end: the fake answers apps.connections.open with its own ws:// endpoint, pushes
envelopes, and checks that each is acked; the answer streams exactly as in HTTP mode."""

from __future__ import annotations

import aiohttp
import pytest

from bot.errors import ConfigError
from bot.texts import ASK_USAGE_TEXT
from tests.conftest import StartBot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack


async def test_socket_mode_mention_dm_and_command(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(SLACK_APP_TOKEN=slack.app_token, SLACK_SIGNING_SECRET="")
    assert slack.socket_connections == 1
    # health is served on PORT in Socket Mode too
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{bot.base}/healthz") as resp:
            assert resp.status == 200
        # Socket Mode does not verify HTTP signatures, so it serves no event endpoint: a forged,
        # unsigned event posted to the health port is refused and never answered.
        forged = slack.event_callback(slack.mention_event("C9", "forged question"))
        async with http.post(f"{bot.base}/slack/events", json=forged) as resp:
            assert resp.status in (404, 405)

    model.script(
        Reply.text("Over the socket.", delay=0.01), Reply.text("DM answer."), Reply.text("Command answer.")
    )
    event = slack.mention_event("C1", "hello over socket mode")
    envelope = await slack.push_event(event, event_id="EvSOCK1")
    await slack.wait_ack(envelope)
    await slack.wait_for(
        lambda: (
            [m.text for m in slack.thread("C1", event["ts"]) if m.user == slack.bot_user_id]
            == ["Over the socket."]
        ),
        timeout=10,
    )

    dm = slack.dm_event("D1", "a DM")
    await slack.wait_ack(await slack.push_event(dm))
    await slack.wait_for(
        lambda: (
            [m.text for m in slack.thread("D1", dm["ts"]) if m.user == slack.bot_user_id] == ["DM answer."]
        ),
        timeout=10,
    )

    ack = await slack.wait_ack(await slack.push_command(text="", channel_id="C5"))
    assert ASK_USAGE_TEXT in str(ack.get("payload"))
    await slack.wait_ack(await slack.push_command(text="via socket", channel_id="C5"))
    await slack.wait_for(
        lambda: any("Command answer." in m.text for m in slack.bot_messages("C5")), timeout=10
    )

    # a redelivery of the same event over the socket is acked and not answered twice
    again = await slack.push_event(
        event, event_id=slack.last_event_id, retry_attempt=1, retry_reason="timeout"
    )
    await slack.wait_ack(again)
    # Counted, not waited out: a question pushed now in C1 is answered after a second answer would be.
    model.script(Reply.text("Marker."))
    marker = slack.mention_event("C1", "marker")
    await slack.wait_ack(await slack.push_event(marker))
    await slack.wait_for(
        lambda: (
            [m.text for m in slack.thread("C1", marker["ts"]) if m.user == slack.bot_user_id] == ["Marker."]
        ),
        timeout=10,
    )
    assert len(model.requests) == 4
    assert len([m for m in slack.thread("C1", event["ts"]) if m.user == slack.bot_user_id]) == 1
    assert not slack.bot_messages("C9")  # the forged event was never answered


async def test_a_rejected_app_token_stops_the_start_with_a_clear_error(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    """slack_sdk's connect loop retries a rejected app-level token forever (a traceback a few seconds
    apart, and the bot never ready): the start asks for the first URL once and names the variable."""
    with pytest.raises(ConfigError) as raised:
        await start_bot(SLACK_APP_TOKEN="xapp-revoked", SLACK_SIGNING_SECRET="")
    assert raised.value.variable == "SLACK_APP_TOKEN"
    assert "invalid_auth" in str(raised.value) and "App-Level Tokens" in str(raised.value)
    assert len(slack.calls_to("apps.connections.open")) == 1
    assert slack.socket_connections == 0
