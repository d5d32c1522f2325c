"""The fake Slack's AI-app surface, driven by the real slack_sdk AsyncWebClient (and a real Bolt app for
deliveries): native streams, the thread status, Slack's Stop, feedback buttons, unavailable methods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.models.messages.chunk import PlanUpdateChunk, TaskUpdateChunk
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import FakeSlack

TEAM = "T0001"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def slack(clock: Clock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(clock=clock) as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def refused(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as err:
        await call
    return err.value


def error_of(err: SlackApiError) -> str:
    return str(err.response["error"])


async def start(client: AsyncWebClient, slack: FakeSlack, channel: str = "C1", **kw: Any) -> tuple[str, str]:
    """A question in ``channel`` and a stream answering it: (thread_ts, stream ts)."""
    parent = slack.add_user_message(channel, "<@UBOT> question")
    kw.setdefault("recipient_user_id", "U_ALICE")
    kw.setdefault("recipient_team_id", TEAM)
    resp = await client.chat_startStream(channel=channel, thread_ts=parent.ts, **kw)
    return parent.ts, str(resp["ts"])


FEEDBACK: dict[str, Any] = {
    "type": "context_actions",
    "elements": [
        {
            "type": "feedback_buttons",
            "action_id": "answer_feedback",
            "positive_button": {"text": {"type": "plain_text", "text": "👍"}, "value": "good"},
            "negative_button": {"text": {"type": "plain_text", "text": "👎"}, "value": "bad"},
        }
    ],
}


# ---------------------------------------------------------------------- the stream's life


async def test_start_append_stop_in_a_channel(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.add_user_message("C1", "<@UBOT> explain")
    started = await client.chat_startStream(
        channel="C1",
        thread_ts=parent.ts,
        recipient_user_id="U_ALICE",
        recipient_team_id=TEAM,
        markdown_text="**Hello**",
    )
    assert started["ok"] and started["channel"] == "C1"
    ts = started["ts"]
    appended = await client.chat_appendStream(channel="C1", ts=ts, markdown_text=" world\n\n- one\n")
    assert appended.data == {"ok": True, "channel": "C1", "ts": ts}
    replies = await client.conversations_replies(channel="C1", ts=parent.ts)
    assert replies["messages"][1]["streaming_state"] == "in_progress"
    assert replies["messages"][1]["text"] == "**Hello** world\n\n- one\n"
    stopped = await client.chat_stopStream(channel="C1", ts=ts, markdown_text="- two", blocks=[FEEDBACK])
    assert stopped["message"]["text"] == "**Hello** world\n\n- one\n- two"
    msg = slack.message("C1", ts)
    assert msg.text == "**Hello** world\n\n- one\n- two" and msg.thread_ts == parent.ts
    assert msg.stream is not None and msg.stream.state == "completed" and msg.stream.calls == 3
    assert msg.stream.recipient_user_id == "U_ALICE" and msg.blocks == [FEEDBACK]
    assert msg.bot_id == "BBOT" and slack.streams("C1") == [msg] and slack.bot_messages("C1") == [msg]
    replies = await client.conversations_replies(channel="C1", ts=parent.ts)
    assert replies["messages"][1]["streaming_state"] == "completed"


async def test_slack_sdk_chat_stream_helper(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.add_user_message("D1", "hi")  # a DM: no recipient needed
    streamer = await client.chat_stream(channel="D1", thread_ts=parent.ts, buffer_size=8)
    for word in ["Thread", "line ", "streams ", "`code` ", "natively."]:
        await streamer.append(markdown_text=word)
    await streamer.stop(blocks=[FEEDBACK])
    [msg] = slack.streams("D1")
    assert msg.text == "Threadline streams `code` natively."
    assert [c.method for c in slack.calls] == [
        "chat.startStream",
        "chat.appendStream",
        "chat.appendStream",
        "chat.stopStream",
    ]
    assert msg.stream is not None and msg.stream.mode == "chunks"


async def test_thread_ts_and_recipients_required(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.add_user_message("C1", "q")
    err = await refused(client.api_call("chat.startStream", json={"channel": "C1", "markdown_text": "x"}))
    assert error_of(err) == "invalid_thread_ts"
    err = await refused(client.chat_startStream(channel="C1", thread_ts=""))
    assert error_of(err) == "invalid_thread_ts"
    err = await refused(client.chat_startStream(channel="C1", thread_ts=parent.ts, recipient_team_id=TEAM))
    assert error_of(err) == "missing_recipient_user_id"
    err = await refused(client.chat_startStream(channel="C1", thread_ts=parent.ts, recipient_user_id="U_A"))
    assert error_of(err) == "missing_recipient_team_id"
    err = await refused(client.chat_startStream(channel="G1", thread_ts=parent.ts))  # a private channel
    assert error_of(err) == "missing_recipient_user_id"
    dm = slack.add_user_message("D1", "q")
    await client.chat_startStream(channel="D1", thread_ts=dm.ts)
    slack.not_in_channel.add("C9")
    err = await refused(
        client.chat_startStream(channel="C9", thread_ts="1.2", recipient_user_id="U", recipient_team_id=TEAM)
    )
    assert error_of(err) == "not_in_channel"
    assert len(slack.streams()) == 1


async def test_a_reply_to_a_reply_streams_into_the_parent_thread(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    thread_ts, _ = await start(client, slack)
    follow_up = slack.add_user_message("C1", "<@UBOT> more", thread_ts=thread_ts)
    second = await client.chat_startStream(
        channel="C1", thread_ts=follow_up.ts, recipient_user_id="U_ALICE", recipient_team_id=TEAM
    )
    assert slack.message("C1", second["ts"]).thread_ts == thread_ts


# ---------------------------------------------------------------------- size and lifetime


async def test_12000_characters_per_call_and_per_message(slack: FakeSlack, client: AsyncWebClient) -> None:
    _, ts = await start(client, slack, markdown_text="a" * 11_000)
    err = await refused(client.chat_appendStream(channel="C1", ts=ts, markdown_text="b" * 1_001))
    assert error_of(err) == "msg_too_long"  # 12,001 in the message: nothing applied
    await client.chat_appendStream(channel="C1", ts=ts, markdown_text="b" * 1_000)  # exactly 12,000
    err = await refused(client.chat_stopStream(channel="C1", ts=ts, markdown_text="c"))
    assert error_of(err) == "msg_too_long"
    msg = slack.message("C1", ts)
    assert len(msg.text) == 12_000 and msg.streaming  # the refused stop left the stream open
    await client.chat_stopStream(channel="C1", ts=ts)

    parent = slack.add_user_message("C2", "q")
    args = {"channel": "C2", "thread_ts": parent.ts, "recipient_user_id": "U", "recipient_team_id": TEAM}
    err = await refused(client.chat_startStream(**args, markdown_text="x" * 12_001))
    assert error_of(err) == "msg_too_long"
    err = await refused(
        client.chat_startStream(**args, chunks=[{"type": "markdown_text", "text": "x" * 12_001}])
    )
    assert error_of(err) == "msg_too_long"
    slack.stream_text_limit = 20  # settable
    _, ts2 = await start(client, slack, channel="C2", markdown_text="x" * 20)
    err = await refused(client.chat_appendStream(channel="C2", ts=ts2, markdown_text="y"))
    assert error_of(err) == "msg_too_long"


async def test_stream_ends_after_its_lifetime(slack: FakeSlack, client: AsyncWebClient, clock: Clock) -> None:
    _, ts = await start(client, slack, markdown_text="partial ")
    clock.now += 299.0
    await client.chat_appendStream(channel="C1", ts=ts, markdown_text="answer")  # appends do not extend it
    clock.now += 1.0
    err = await refused(client.chat_appendStream(channel="C1", ts=ts, markdown_text=" lost"))
    assert error_of(err) == "message_not_in_streaming_state"
    err = await refused(client.chat_stopStream(channel="C1", ts=ts))
    assert error_of(err) == "message_not_in_streaming_state"
    msg = slack.message("C1", ts)
    assert msg.text == "partial answer" and msg.stream is not None and msg.stream.state == "expired"
    # chat.update finishes the text on the expired stream, and replaces what it shows
    await client.chat_update(channel="C1", ts=ts, text="partial answer, finished")
    assert msg.text == "partial answer, finished" and msg.stream.replaced and msg.blocks is None
    await client.chat_delete(channel="C1", ts=ts)
    assert msg.deleted

    slack.stream_lifetime = 5.0  # settable
    _, ts2 = await start(client, slack)
    clock.now += 5.0
    err = await refused(client.chat_appendStream(channel="C1", ts=ts2, markdown_text="x"))
    assert error_of(err) == "message_not_in_streaming_state"
    _, ts3 = await start(client, slack)
    slack.expire_stream("C1", ts3)  # or at once
    expired = slack.message("C1", ts3).stream
    assert expired is not None and expired.state == "expired"


async def test_live_stream_refuses_update_and_delete(slack: FakeSlack, client: AsyncWebClient) -> None:
    _, ts = await start(client, slack, markdown_text="one")
    err = await refused(client.chat_update(channel="C1", ts=ts, text="edited"))
    assert error_of(err) == "streaming_state_conflict"
    err = await refused(client.chat_delete(channel="C1", ts=ts))
    assert error_of(err) == "cant_delete_message"
    await client.chat_appendStream(channel="C1", ts=ts, markdown_text=" two")  # the stream is unharmed
    await client.chat_stopStream(channel="C1", ts=ts)
    err = await refused(client.chat_stopStream(channel="C1", ts=ts))  # stopping twice
    assert error_of(err) == "message_not_in_streaming_state"
    await client.chat_update(channel="C1", ts=ts, markdown_text="one two, revised")
    msg = slack.message("C1", ts)
    assert msg.text == "one two, revised" and msg.blocks is None and len(msg.edits) == 1


async def test_which_message_an_append_names(slack: FakeSlack, client: AsyncWebClient) -> None:
    _, ts = await start(client, slack)
    err = await refused(client.chat_appendStream(channel="C1", ts=ts))
    assert error_of(err) == "no_text"
    err = await refused(client.chat_appendStream(channel="C1", ts="1.000001", markdown_text="x"))
    assert error_of(err) == "message_not_found"
    posted = await client.chat_postMessage(channel="C1", text="an ordinary post")
    err = await refused(client.chat_appendStream(channel="C1", ts=posted["ts"], markdown_text="x"))
    assert error_of(err) == "message_not_in_streaming_state"
    human = slack.add_user_message("C1", "mine")
    err = await refused(client.chat_appendStream(channel="C1", ts=human.ts, markdown_text="x"))
    assert error_of(err) == "message_not_owned_by_app"


# ---------------------------------------------------------------------- chunks and cards


async def test_task_cards_plan_and_block_chunks(slack: FakeSlack, client: AsyncWebClient) -> None:
    _, ts = await start(client, slack, task_display_mode="plan", chunks=[PlanUpdateChunk(title="Answering")])
    retry = TaskUpdateChunk(id="retry", title="Model busy", status="in_progress", details="retrying, 2 of 3…")
    await client.chat_appendStream(channel="C1", ts=ts, chunks=[retry])
    await client.chat_appendStream(
        channel="C1",
        ts=ts,
        chunks=[
            {
                "type": "task_update",
                "id": "retry",
                "title": "Model answered",
                "status": "complete",
                "details": " ok",
            },
            {"type": "markdown_text", "text": "The answer."},
            {"type": "blocks", "blocks": [{"type": "divider"}]},
        ],
    )
    stream = slack.message("C1", ts).stream
    assert stream is not None and stream.plan_title == "Answering" and stream.task_display_mode == "plan"
    card = stream.tasks["retry"]
    assert (card.title, card.status, card.details) == ("Model answered", "complete", "retrying, 2 of 3… ok")
    assert [kind for kind, _ in stream.segments] == ["task", "markdown", "blocks"]
    assert slack.message("C1", ts).text == "The answer."

    bad = [
        [{"type": "task_update", "id": "t", "title": "x", "status": "done"}],
        [{"type": "task_update", "id": "t", "title": "x" * 257, "status": "complete"}],
        [{"type": "task_update", "title": "no id", "status": "complete"}],
        [{"type": "plan_update", "title": ""}],
        [{"type": "emoji", "name": "tada"}],
        [{"text": "no type"}],
    ]
    for chunks in bad:
        err = await refused(client.chat_appendStream(channel="C1", ts=ts, chunks=chunks))
        assert error_of(err) == "invalid_arguments", chunks
        assert err.response["response_metadata"]["messages"][0].startswith("[ERROR]")
    err = await refused(
        client.chat_appendStream(
            channel="C1", ts=ts, chunks=[{"type": "blocks", "blocks": [{"type": "section"}]}]
        )
    )
    assert error_of(err) == "invalid_blocks"


async def test_stream_keeps_the_shape_it_opened_with(slack: FakeSlack, client: AsyncWebClient) -> None:
    _, ts = await start(client, slack, markdown_text="text mode")
    card = [{"type": "task_update", "id": "t", "title": "Working", "status": "in_progress"}]
    err = await refused(client.chat_appendStream(channel="C1", ts=ts, chunks=card))
    assert error_of(err) == "streaming_mode_mismatch"
    await client.chat_appendStream(channel="C1", ts=ts, markdown_text=" still fine")
    _, ts2 = await start(client, slack, chunks=card)  # opened with chunks: both forms are taken
    await client.chat_appendStream(channel="C1", ts=ts2, markdown_text="text")
    slack.stream_mode_lock = False
    await client.chat_appendStream(channel="C1", ts=ts, chunks=card)


async def test_form_encoded_chunks(slack: FakeSlack, client: AsyncWebClient) -> None:
    _, ts = await start(client, slack)
    await client.api_call(
        "chat.appendStream",
        data={"channel": "C1", "ts": ts, "chunks": '[{"type": "markdown_text", "text": "from a form"}]'},
    )
    assert slack.message("C1", ts).text == "from a form"


# ---------------------------------------------------------------------- the final blocks


async def test_stop_validates_feedback_blocks_and_metadata(slack: FakeSlack, client: AsyncWebClient) -> None:
    thread_ts, ts = await start(client, slack, markdown_text="answer")
    element: dict[str, Any] = FEEDBACK["elements"][0]
    six = {"type": "context_actions", "elements": [dict(element, action_id=f"f{i}") for i in range(6)]}
    no_value = {
        "type": "context_actions",
        "elements": [dict(element, positive_button={"text": {"type": "plain_text", "text": "👍"}})],
    }
    long_text = {
        "type": "context_actions",
        "elements": [
            dict(element, negative_button={"text": {"type": "plain_text", "text": "n" * 76}, "value": "bad"})
        ],
    }
    wrong_kind = {"type": "context_actions", "elements": [{"type": "button", "text": {"type": "plain_text"}}]}
    for blocks in (
        [six],
        [no_value],
        [long_text],
        [wrong_kind],
        [{"type": "context_actions", "elements": []}],
    ):
        err = await refused(client.chat_stopStream(channel="C1", ts=ts, blocks=blocks))
        assert error_of(err) == "invalid_blocks", blocks
    err = await refused(client.chat_stopStream(channel="C1", ts=ts, metadata={"event_payload": {}}))
    assert error_of(err) == "invalid_metadata_format"
    icon = {"type": "icon_button", "icon": "trash", "text": {"type": "plain_text", "text": "Delete"}}
    five = {
        "type": "context_actions",
        "elements": [dict(element, action_id=f"f{i}") for i in range(4)] + [icon],
    }
    metadata = {"event_type": "threadline_answer", "event_payload": {"request": "r1"}}
    await client.chat_stopStream(channel="C1", ts=ts, blocks=[five], metadata=metadata)
    assert slack.message("C1", ts).blocks == [five]
    replies = await client.conversations_replies(channel="C1", ts=thread_ts, include_all_metadata=True)
    assert replies["messages"][1]["metadata"] == metadata


# ---------------------------------------------------------------------- rate limits


async def test_stream_rate_limits(slack: FakeSlack, client: AsyncWebClient, clock: Clock) -> None:
    assert slack.rate_limits["chat.startStream"] == 20 and slack.rate_limits["chat.stopStream"] == 20
    assert slack.rate_limits["chat.appendStream"] == 100
    slack.rate_limits.update({"chat.startStream": 2, "chat.appendStream": 3, "chat.stopStream": 1})
    _, ts = await start(client, slack)
    clock.now += 10
    await start(client, slack)
    err = await refused(start(client, slack))
    assert err.response.status_code == 429 and error_of(err) == "ratelimited"
    assert err.response.headers["Retry-After"] == "50"  # until the first start leaves the 60 s window
    for _ in range(3):
        await client.chat_appendStream(channel="C1", ts=ts, markdown_text="x")
    err = await refused(client.chat_appendStream(channel="C1", ts=ts, markdown_text="x"))
    assert err.response.status_code == 429
    await client.chat_stopStream(channel="C1", ts=ts)
    clock.now += 50
    await start(client, slack)  # the first start has left the window
    slack.rate_windows["chat.stopStream"] = 1.0  # a method's own window
    clock.now += 1
    await client.chat_stopStream(channel="C1", ts=slack.streams()[1].ts)
    assert slack.rate_limited_count == 2


async def test_fractional_retry_after(slack: FakeSlack, client: AsyncWebClient, clock: Clock) -> None:
    slack.rate_limits["chat.startStream"] = 1
    await start(client, slack)
    clock.now += 59.75
    err = await refused(start(client, slack))
    assert err.response.headers["Retry-After"] == "1"  # whole seconds by default, as Slack sends them
    slack.fractional_retry_after = True
    err = await refused(start(client, slack))
    assert err.response.headers["Retry-After"] == "0.25"
    slack.fail("chat.appendStream", retry_after=0.2)
    err = await refused(client.chat_appendStream(channel="C1", ts="1.000001", markdown_text="x"))
    assert err.response.headers["Retry-After"] == "0.2"
    # slack_sdk's own rate-limit retry handler reads Retry-After with int(): a fraction breaks it.
    retrying = AsyncWebClient(
        token=slack.bot_token, base_url=slack.api_url, retry_handlers=[AsyncRateLimitErrorRetryHandler()]
    )
    slack.fail("chat.postMessage", retry_after=0.2)
    with pytest.raises(ValueError, match="invalid literal for int"):
        await retrying.chat_postMessage(channel="C1", text="x")


# ---------------------------------------------------------------------- the thread status


async def test_status_shown_and_cleared(slack: FakeSlack, client: AsyncWebClient, clock: Clock) -> None:
    parent = slack.add_user_message("C1", "<@UBOT> q")
    await client.assistant_threads_setStatus(
        channel_id="C1", thread_ts=parent.ts, status="is thinking…", loading_messages=["Reading", "Writing"]
    )
    assert slack.thread_status("C1", parent.ts) == "is thinking…"
    clock.now += 1
    await client.assistant_threads_setStatus(channel_id="C1", thread_ts=parent.ts, status="")
    assert slack.thread_status("C1", parent.ts) == ""
    clock.now += 1
    await client.assistant_threads_setStatus(channel_id="C1", thread_ts=parent.ts, status="is thinking…")
    await client.chat_postMessage(channel="C1", thread_ts=parent.ts, text="the answer")  # a reply clears it
    assert slack.thread_status("C1", parent.ts) == ""
    clock.now += 1
    await client.assistant_threads_setStatus(channel_id="C1", thread_ts=parent.ts, status="is thinking…")
    await client.chat_startStream(
        channel="C1", thread_ts=parent.ts, recipient_user_id="U", recipient_team_id=TEAM
    )
    assert slack.thread_status("C1", parent.ts) == ""
    clock.now += 1
    await client.assistant_threads_setStatus(channel_id="C1", thread_ts=parent.ts, status="is retrying…")
    clock.now += 120  # Slack's timeout
    assert slack.thread_status("C1", parent.ts) == ""
    history = [(s.status, s.source) for s in slack.status_history("C1", parent.ts)]
    assert history == [
        ("is thinking…", "api"),
        ("", "api"),
        ("is thinking…", "api"),
        ("", "reply"),
        ("is thinking…", "api"),
        ("", "reply"),
        ("is retrying…", "api"),
        ("", "timeout"),
    ]
    assert slack.status_history()[0].loading_messages == ["Reading", "Writing"]


async def test_status_arguments_limit_and_scope(
    slack: FakeSlack, client: AsyncWebClient, clock: Clock
) -> None:
    parent = slack.add_user_message("C1", "q")
    err = await refused(client.assistant_threads_setStatus(channel_id="C1", thread_ts="", status="x"))
    assert error_of(err) == "invalid_thread_ts"
    err = await refused(client.api_call("assistant.threads.setStatus", json={"thread_ts": parent.ts}))
    assert error_of(err) == "channel_not_found"
    err = await refused(
        client.api_call("assistant.threads.setStatus", json={"channel_id": "C1", "thread_ts": "1.2"})
    )
    assert error_of(err) == "invalid_arguments"
    eleven = [f"step {i}" for i in range(11)]
    err = await refused(
        client.assistant_threads_setStatus(
            channel_id="C1", thread_ts=parent.ts, status="x", loading_messages=eleven
        )
    )
    assert error_of(err) == "invalid_arguments"
    clock.now += 1  # refused calls count against the limit too
    await client.assistant_threads_setStatus(channel_id="C1", thread_ts=parent.ts, status="is thinking…")
    err = await refused(
        client.assistant_threads_setStatus(channel_id="C1", thread_ts=parent.ts, status="again")
    )
    assert (
        err.response.status_code == 429 and err.response.headers["Retry-After"] == "1"
    )  # 1 a second per thread
    other = slack.add_user_message("C1", "another question")
    await client.assistant_threads_setStatus(channel_id="C1", thread_ts=other.ts, status="is thinking…")
    clock.now += 1
    await client.assistant_threads_setStatus(channel_id="C1", thread_ts=parent.ts, status="again")
    slack.status_limit_per_thread = None
    await client.assistant_threads_setStatus(channel_id="C1", thread_ts=parent.ts, status="and again")
    slack.scopes.remove("chat:write")
    err = await refused(client.assistant_threads_setStatus(channel_id="C1", thread_ts=parent.ts, status="x"))
    assert error_of(err) == "missing_scope" and err.response["needed"] == "chat:write"
    slack.scopes.append("assistant:write")  # the older scope still works
    await client.assistant_threads_setStatus(channel_id="C1", thread_ts=parent.ts, status="x")


# ---------------------------------------------------------------------- a workspace without the methods


@pytest.mark.parametrize("error", ["unknown_method", "not_allowed", "feature_not_enabled"])
async def test_workspace_without_the_methods(slack: FakeSlack, client: AsyncWebClient, error: str) -> None:
    parent = slack.add_user_message("C1", "q")
    slack.disable_ai_methods(error)
    calls = [
        client.chat_startStream(
            channel="C1", thread_ts=parent.ts, recipient_user_id="U", recipient_team_id=TEAM
        ),
        client.chat_appendStream(channel="C1", ts="1.2", markdown_text="x"),
        client.chat_stopStream(channel="C1", ts="1.2"),
        client.assistant_threads_setStatus(channel_id="C1", thread_ts=parent.ts, status="x"),
    ]
    for call in calls:
        err = await refused(call)
        assert err.response.status_code == 200 and error_of(err) == error
    if error == "unknown_method":
        assert err.response["req_method"] == "assistant.threads.setStatus"
    assert slack.unknown_methods == [] and slack.streams() == []
    slack.enable_ai_methods()
    await start(client, slack)


async def test_methods_the_fake_does_not_model_are_refused(slack: FakeSlack, client: AsyncWebClient) -> None:
    for method in ("chat.scheduleMessage", "agents.sessions.setStatus", "no.suchMethod"):
        err = await refused(client.api_call(method, json={}))
        assert error_of(err) == "unknown_method" and err.response["req_method"] == method
    assert slack.unknown_methods == ["chat.scheduleMessage", "agents.sessions.setStatus", "no.suchMethod"]


# ---------------------------------------------------------------------- deliveries: Stop and feedback


@pytest.fixture
async def bolt(slack: FakeSlack) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A real Bolt app that records the Stop events and feedback clicks it receives."""
    received: list[dict[str, Any]] = []
    app = AsyncApp(
        client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
        signing_secret=slack.signing_secret,
    )

    @app.event("agent_session_stopped")
    async def on_stop(body: dict[str, Any]) -> None:
        received.append(body)

    @app.action("answer_feedback")
    async def on_feedback(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        received.append(body)

    @app.action("retry")
    async def on_retry(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        received.append(body)

    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events", received
    await runner.cleanup()


async def test_agent_session_stopped(
    slack: FakeSlack, client: AsyncWebClient, bolt: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = bolt
    thread_ts, ts = await start(client, slack, markdown_text="half an ans")
    event = slack.agent_session_stopped_event("C1", thread_ts, user="U_ALICE")
    assert event["streaming_message_ts"] == [ts] and event["thread_ts"] == thread_ts
    assert event["type"] == "agent_session_stopped" and event["user"] == "U_ALICE"
    status, _ = await slack.send_event(url, event)
    assert status == 200
    await slack.wait_for(lambda: len(received) == 1)
    assert received[0]["event"] == event and received[0]["team_id"] == TEAM
    err = await refused(client.chat_appendStream(channel="C1", ts=ts, markdown_text="wer"))
    assert error_of(err) == "stopped_by_user"
    err = await refused(client.chat_stopStream(channel="C1", ts=ts))
    assert error_of(err) == "message_not_in_streaming_state"
    await client.chat_update(channel="C1", ts=ts, text="half an ans _(stopped)_")  # the text can be marked
    assert slack.message("C1", ts).text == "half an ans _(stopped)_"
    again = slack.agent_session_stopped_event("C1", thread_ts)
    assert again["streaming_message_ts"] == []  # no stream was live


async def test_feedback_click_reaches_the_app(
    slack: FakeSlack, client: AsyncWebClient, bolt: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = bolt
    _, ts = await start(client, slack, markdown_text="answer")
    await client.chat_stopStream(channel="C1", ts=ts, blocks=[FEEDBACK])
    for positive in (True, False):
        payload = slack.feedback_action("C1", ts, positive=positive, user="U_BOB")
        status, _ = await slack.send_action(url, payload)
        assert status == 200
    await slack.wait_for(lambda: len(received) == 2)
    actions = [body["actions"][0] for body in received]
    assert [(a["type"], a["action_id"], a["value"]) for a in actions] == [
        ("feedback_buttons", "answer_feedback", "good"),
        ("feedback_buttons", "answer_feedback", "bad"),
    ]
    body = received[0]
    assert body["type"] == "block_actions" and body["user"]["id"] == "U_BOB"
    assert body["container"]["message_ts"] == ts and body["message"]["ts"] == ts
    assert body["response_url"].startswith(slack.url)
    status, _ = await slack.send_action(url, slack.feedback_action("C1", ts), signature="v0=forged")
    assert status == 401


async def test_ordinary_button_payload(
    slack: FakeSlack, client: AsyncWebClient, bolt: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = bolt
    button = {
        "type": "button",
        "action_id": "retry",
        "value": "r1",
        "text": {"type": "plain_text", "text": "Retry"},
    }
    posted = await client.chat_postMessage(
        channel="C1",
        text="failed",
        blocks=[{"type": "actions", "block_id": "controls", "elements": [button]}],
    )
    await slack.send_action(url, slack.button_action("C1", posted["ts"], "retry"))
    await slack.wait_for(lambda: len(received) == 1)
    action = received[0]["actions"][0]
    assert (action["action_id"], action["block_id"], action["value"]) == ("retry", "controls", "r1")
