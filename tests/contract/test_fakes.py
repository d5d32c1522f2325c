"""The fakes, driven by the real clients: slack_sdk, slack_bolt and openai talk to them over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import AsyncOpenAI
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes import FakeOpenAI, FakeSlack, Reply


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def oai(llm: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(api_key=llm.api_key, base_url=llm.base_url, max_retries=0, timeout=5) as c:
        yield c


# ---------------------------------------------------------------------- Slack Web API


async def test_post_update_and_replies(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.add_user_message("C1", "<@UBOT> what is 2+2?")
    posted = await client.chat_postMessage(
        channel="C1", thread_ts=parent.ts, text="Thinking…", unfurl_links=False, unfurl_media=False
    )
    ts = posted["ts"]
    assert float(ts) > float(parent.ts)
    button = {
        "type": "actions",
        "elements": [{"type": "button", "action_id": "stop", "text": _plain("Stop")}],
    }
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "4", "verbatim": True}}
    await client.chat_update(channel="C1", ts=ts, text="4", blocks=[section, button], parse="none")
    msg = slack.messages[("C1", ts)]
    assert msg.blocks == [section, button] and msg.unfurl_links is False and msg.unfurl_media is False
    await client.chat_update(channel="C1", ts=ts, text="4, final")  # text without blocks removes the blocks
    assert msg.blocks is None and msg.text == "4, final"
    assert [(e.text, e.parse, e.blocks is None) for e in msg.edits] == [
        ("4", "none", False),
        ("4, final", None, True),
    ]

    replies = await client.conversations_replies(channel="C1", ts=parent.ts)
    assert [(m["user"], m.get("bot_id"), m["text"]) for m in replies["messages"]] == [
        ("U_ALICE", None, "<@UBOT> what is 2+2?"),
        ("UBOT", "BBOT", "4, final"),
    ]
    assert replies["messages"][1]["thread_ts"] == parent.ts
    assert slack.thread("C1", parent.ts) == [parent, msg]
    assert slack.bot_messages("C1") == [msg]
    # how slack_sdk sends each method
    methods = {c.method: (c.http_method, c.content_type, c.body_size > 0) for c in slack.calls}
    assert methods["chat.postMessage"] == ("POST", "application/json", True)
    assert methods["conversations.replies"] == ("GET", "application/x-www-form-urlencoded", False)


async def test_replies_page_as_slack_pages_them(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.add_user_message("C1", "root")
    for i in range(2_500):
        slack.add_user_message("C1", f"r{i}", thread_ts=parent.ts)
    first = await client.conversations_replies(channel="C1", ts=parent.ts)
    assert len(first["messages"]) == 1_000  # the default (and the most a page holds)
    assert first["messages"][0]["text"] == "root" and first["messages"][0]["reply_count"] == 2_500
    assert first["has_more"] is True and first["response_metadata"]["next_cursor"]
    big = await client.conversations_replies(channel="C1", ts=parent.ts, limit=5_000)
    assert len(big["messages"]) == 1_000
    texts: list[str] = []
    pages = 0
    async for page in await client.conversations_replies(channel="C1", ts=parent.ts, limit=200):
        pages += 1
        texts += [m["text"] for m in page["messages"]]
    assert pages == 13 and texts == ["root", *(f"r{i}" for i in range(2_500))]  # oldest first, each once
    last = slack.calls_to("conversations.replies")[-1].response
    assert last["has_more"] is False and last["response_metadata"]["next_cursor"] == ""
    # A reply's ts reads the same thread; a cursor that is not one is refused.
    by_reply = await client.conversations_replies(
        channel="C1", ts=slack.thread("C1", parent.ts)[5].ts, limit=2
    )
    assert [m["text"] for m in by_reply["messages"]] == ["root", "r0"]
    with pytest.raises(SlackApiError) as err:
        await client.conversations_replies(channel="C1", ts=parent.ts, cursor="not-a-cursor")
    assert err.value.response["error"] == "invalid_cursor"


async def test_a_message_shortcut_payload_is_shaped_and_signed_as_slack_sends_it(slack: FakeSlack) -> None:
    parent = slack.add_user_message("C1", "root", user="U_ALICE")
    reply = slack.add_user_message("C1", "a reply", user="U_BOB", thread_ts=parent.ts)
    on_reply = slack.shortcut_payload("C1", reply.ts, user="U_CAROL")
    assert on_reply["type"] == "message_action" and on_reply["callback_id"] == "summarize_thread"
    assert on_reply["trigger_id"] and on_reply["response_url"].endswith(
        f"/response/{slack.last_action_response_key}"
    )
    assert on_reply["message"]["ts"] == reply.ts and on_reply["message"]["thread_ts"] == parent.ts
    assert on_reply["message"]["user"] == "U_BOB" and on_reply["message"]["text"] == "a reply"
    assert on_reply["message_ts"] == reply.ts
    assert on_reply["channel"]["id"] == "C1" and on_reply["user"]["id"] == "U_CAROL"
    on_root = slack.shortcut_payload("C1", parent.ts)
    assert on_root["message"]["thread_ts"] == parent.ts and on_root["message"]["reply_count"] == 1
    lone = slack.add_user_message("C1", "no replies")
    assert "thread_ts" not in slack.shortcut_payload("C1", lone.ts)["message"]


async def test_update_keeps_or_clears_blocks(slack: FakeSlack, client: AsyncWebClient) -> None:
    section = {"type": "section", "text": _plain("hi")}
    ts = (await client.chat_postMessage(channel="C1", text="hi", blocks=[section]))["ts"]
    neither = {"channel": "C1", "ts": ts, "attachments": [{"text": "a"}]}  # neither text nor blocks
    await client.api_call("chat.update", json=neither)
    assert slack.messages[("C1", ts)].blocks == [section]
    # a form post with blocks as a JSON string, as older clients send them
    await client.api_call("chat.update", data={"channel": "C1", "ts": ts, "blocks": "[]", "text": "x"})
    assert slack.messages[("C1", ts)].blocks is None
    assert slack.calls[-1].content_type == "application/x-www-form-urlencoded"
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(
            channel="C1", ts=ts, text="y", blocks=[{"type": "section", "text": _plain("z" * 3001)}]
        )
    assert err.value.response["error"] == "invalid_blocks"


async def test_auth_test_reports_scopes_in_header(slack: FakeSlack, client: AsyncWebClient) -> None:
    resp = await client.auth_test()
    assert resp["user_id"] == "UBOT" and resp["bot_id"] == "BBOT" and resp["team_id"] == "T0001"
    assert set(resp.headers["x-oauth-scopes"].split(",")) == set(slack.scopes)
    assert slack.calls_to("auth.test")[0].http_method == "POST"


async def test_bad_token_and_missing_scope(slack: FakeSlack) -> None:
    bad = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url)
    with pytest.raises(SlackApiError) as err:
        await bad.auth_test()
    assert err.value.response["error"] == "invalid_auth"
    good = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    slack.scopes.remove("users:read")
    with pytest.raises(SlackApiError) as err:
        await good.users_info(user="U_ALICE")
    assert err.value.response["error"] == "missing_scope" and err.value.response["needed"] == "users:read"


async def test_msg_too_long_and_message_not_found(slack: FakeSlack, client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel="C1", text="short"))["ts"]
    await client.chat_update(channel="C1", ts=ts, text="x" * 4000)
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts=ts, text="x" * 4001)
    assert err.value.response["error"] == "msg_too_long"
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts="1.000001", text="x")
    assert err.value.response["error"] == "message_not_found"
    assert len(slack.messages[("C1", ts)].edits) == 1


async def test_injected_429_is_surfaced_with_retry_after(slack: FakeSlack, client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel="C1", text="a"))["ts"]
    slack.fail("chat.update", retry_after=7)
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts=ts, text="b")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.response["error"] == "ratelimited"
    await client.chat_update(channel="C1", ts=ts, text="c")  # only the next call failed
    assert slack.rate_limited_count == 1
    assert [e.text for e in slack.messages[("C1", ts)].edits] == ["c"]


async def test_sliding_window_update_limit() -> None:
    now = [100.0]
    async with FakeSlack(clock=lambda: now[0]) as slack:
        slack.update_limit_per_minute = 2
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        ts = (await client.chat_postMessage(channel="C1", text="a"))["ts"]
        await client.chat_update(channel="C1", ts=ts, text="1")
        now[0] = 130.0
        await client.chat_update(channel="C1", ts=ts, text="2")
        now[0] = 159.5
        with pytest.raises(SlackApiError) as err:
            await client.chat_update(channel="C1", ts=ts, text="3")
        assert err.value.response.status_code == 429
        assert err.value.response.headers["Retry-After"] == "1"  # ceil(100 + 60 - 159.5), at least 1
        now[0] = 160.0  # the first call has left the window
        await client.chat_update(channel="C1", ts=ts, text="3")
        assert slack.rate_limited_count == 1


async def test_fail_with_status_200_and_5xx(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.not_in_channel.add("C9")
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C9", text="hi")
    assert err.value.response["error"] == "not_in_channel"
    slack.fail("chat.postMessage", status=503, apply=True)  # the post lands, its answer is lost
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="hi")
    assert err.value.response.status_code == 503
    assert [m.text for m in slack.bot_messages("C1")] == ["hi"]


async def test_unknown_method_is_refused_and_recorded(slack: FakeSlack, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await client.api_call("agents.sessions.setStatus", json={"channel": "C1"})
    assert err.value.response["error"] == "unknown_method"
    assert slack.unknown_methods == ["agents.sessions.setStatus"]


async def test_reactions_use_query_string(slack: FakeSlack, client: AsyncWebClient) -> None:
    msg = slack.add_user_message("C1", "hello")
    await client.reactions_add(channel="C1", timestamp=msg.ts, name="eyes")
    assert msg.reactions == {"eyes": {"UBOT"}}
    assert slack.calls[-1].body_size == 0 and slack.calls[-1].args["name"] == "eyes"  # in the query string
    await client.reactions_remove(channel="C1", timestamp=msg.ts, name="eyes")
    assert msg.reactions == {}


async def test_wait_for_times_out_with_a_summary(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C1", text="one")
    with pytest.raises(TimeoutError, match=r"chat\.postMessage"):
        await slack.wait_for(lambda: len(slack.bot_messages()) == 2, timeout=0.05)


# ---------------------------------------------------------------------- deliveries to a Bolt app


@pytest.fixture
async def bolt_url(slack: FakeSlack) -> AsyncIterator[str]:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    app = AsyncApp(client=client, signing_secret=slack.signing_secret)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        await say(text="hi there", thread_ts=event["ts"])

    @app.action("stop")
    async def on_stop(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.chat_delete(channel=body["channel"]["id"], ts=body["message"]["ts"])

    @app.command("/ask")
    async def on_ask(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        await ack()
        await respond(text=f"asked: {command['text']}")

    @app.shortcut("summarize_thread")
    async def on_summarize(ack: Any, respond: Any, shortcut: dict[str, Any]) -> None:
        await ack()
        await respond(text=f"summarizing {shortcut['message']['ts']} for {shortcut['user']['id']}")

    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    await runner.cleanup()


async def test_a_signed_message_shortcut_reaches_bolt(slack: FakeSlack, bolt_url: str) -> None:
    message = slack.add_user_message("C1", "root")
    payload = slack.shortcut_payload("C1", message.ts, user="U_CAROL")
    assert (await slack.send_action(bolt_url, payload, signature="v0=bad"))[0] == 401
    status, _ = await slack.send_action(bolt_url, payload)
    assert status == 200
    key = slack.last_action_response_key
    assert key is not None
    await slack.wait_for(lambda: bool(slack.responses_to(key)))
    assert slack.responses_to(key)[0]["text"] == f"summarizing {message.ts} for U_CAROL"


async def test_signed_event_reaches_bolt(slack: FakeSlack, bolt_url: str) -> None:
    event = slack.mention_event("C1", "hello")
    assert event["text"] == "<@UBOT> hello" and event["type"] == "app_mention"
    status, _ = await slack.send_event(bolt_url, event)
    assert status == 200
    await slack.wait_for(lambda: len(slack.bot_messages("C1")) == 1)
    reply = slack.bot_messages("C1")[0]
    assert reply.thread_ts == event["ts"] and reply.text == "hi there"
    bad_status, _ = await slack.send_event(bolt_url, event, signature="v0=bad")
    assert bad_status == 401
    old_status, _ = await slack.send_event(bolt_url, event, timestamp=1_600_000_000)
    assert old_status == 401


async def test_signed_command_and_response_url(slack: FakeSlack, bolt_url: str) -> None:
    status, _ = await slack.send_command(bolt_url, text="why?")
    assert status == 200
    key = slack.last_command_response_key
    assert key is not None
    await slack.wait_for(lambda: bool(slack.responses_to(key)))
    assert slack.responses_to(key)[0]["text"] == "asked: why?"
    hook = AsyncWebhookClient(slack.response_url("direct"))
    assert (await hook.send(text="x")).status_code == 200
    assert slack.responses[-1] == ("direct", {"text": "x"})


async def test_signed_action_reaches_bolt(slack: FakeSlack, client: AsyncWebClient, bolt_url: str) -> None:
    ts = (await client.chat_postMessage(channel="C1", text="streaming…"))["ts"]
    await client.chat_postEphemeral(channel="C1", user="U_ALICE", text="only for you")
    payload = {
        "type": "block_actions",
        "user": {"id": "U_ALICE"},
        "channel": {"id": "C1"},
        "container": {"type": "message", "message_ts": ts, "channel_id": "C1"},
        "message": {"ts": ts, "text": "streaming…"},
        "actions": [{"type": "button", "action_id": "stop", "block_id": "b", "value": "x"}],
        "trigger_id": "1.2.3",
    }
    status, _ = await slack.send_action(bolt_url, payload)
    assert status == 200
    await slack.wait_for(lambda: slack.messages[("C1", ts)].deleted)
    assert slack.bot_messages("C1") == [] and [m.text for m in slack.ephemerals("U_ALICE")] == [
        "only for you"
    ]


# ---------------------------------------------------------------------- Socket Mode


async def test_socket_mode_push_ack_and_reconnect(slack: FakeSlack) -> None:
    web_client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    sm = SocketModeClient(app_token=slack.app_token, web_client=web_client)
    received: list[SocketModeRequest] = []

    async def listener(c: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        received.append(req)
        await c.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    sm.socket_mode_request_listeners.append(listener)
    try:
        await sm.connect()  # type: ignore[no-untyped-call]
        envelope_id = await slack.push_event(slack.mention_event("C1", "hi"))
        assert (await slack.wait_ack(envelope_id)) == {"envelope_id": envelope_id}
        assert received[0].type == "events_api" and received[0].payload["event"]["text"] == "<@UBOT> hi"
        assert received[0].retry_attempt == 0  # as from Slack: Bolt turns it into x-slack-retry-num: 0
        assert slack.calls_to("apps.connections.open")[0].token == slack.app_token

        await slack.disconnect_socket()
        await slack.wait_for(lambda: slack.socket_connections == 2)
        envelope_id = await slack.push_envelope(
            "slash_commands", {"command": "/ask"}, accepts_response_payload=True
        )
        await slack.wait_ack(envelope_id)
        assert received[-1].accepts_response_payload is True
    finally:
        await sm.close()  # type: ignore[no-untyped-call]


# ---------------------------------------------------------------------- OpenAI


async def test_stream_with_usage(llm: FakeOpenAI, oai: AsyncOpenAI) -> None:
    llm.script(Reply.text("The answer is 4."))
    stream = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "2+2?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    deltas: list[str] = []
    finish: list[str | None] = []
    usage = None
    async for chunk in stream:
        if chunk.choices:
            deltas.append(chunk.choices[0].delta.content or "")
            finish.append(chunk.choices[0].finish_reason)
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(deltas) == "The answer is 4."
    assert finish[-1] == "stop" and finish[:-1] == [None] * (len(finish) - 1)
    assert usage is not None and usage.completion_tokens == 4
    assert llm.requests[0]["stream_options"] == {"include_usage": True}
    assert llm.finished_streams == 1


async def test_chunks_are_flushed_one_by_one(llm: FakeOpenAI, oai: AsyncOpenAI) -> None:
    llm.script(Reply(chunks=["a", "b", "c"], stall_after=2))
    stream = await oai.chat.completions.create(model="m", messages=[], stream=True)
    seen = ""
    async for chunk in stream:
        seen += chunk.choices[0].delta.content or ""
        if seen == "ab":  # reached while the fake holds back "c": each chunk was flushed when sent
            break
    await stream.close()
    await llm.wait_for(lambda: llm.active_streams == 0)
    assert llm.abandoned_streams == 1


async def test_stall_is_caught_by_a_client_timeout(llm: FakeOpenAI, oai: AsyncOpenAI) -> None:
    llm.script(Reply(chunks=["a", "b"], stall_after=1))
    stream = await oai.chat.completions.create(model="m", messages=[], stream=True)
    it = stream.__aiter__()
    assert (await it.__anext__()).choices[0].delta.role == "assistant"
    assert (await it.__anext__()).choices[0].delta.content == "a"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(it.__anext__(), 0.2)
    await stream.close()


async def test_server_error(llm: FakeOpenAI, oai: AsyncOpenAI) -> None:
    llm.script(Reply(chunks=[], status=500), Reply.error(code="context_length_exceeded", retry_after=2))
    with pytest.raises(openai.InternalServerError) as err:
        await oai.chat.completions.create(model="m", messages=[], stream=True)
    assert err.value.status_code == 500
    with pytest.raises(openai.BadRequestError) as bad:
        await oai.chat.completions.create(model="m", messages=[], stream=True)
    assert bad.value.code == "context_length_exceeded"
    assert bad.value.response.headers["retry-after"] == "2"


async def test_cut_stream_raises_in_the_client(llm: FakeOpenAI, oai: AsyncOpenAI) -> None:
    llm.script(Reply.text("one two three four", cut_after=2))
    stream = await oai.chat.completions.create(model="m", messages=[], stream=True)
    seen = ""
    with pytest.raises(httpx.RemoteProtocolError):  # not wrapped by openai: catch httpx errors too
        async for chunk in stream:
            seen += chunk.choices[0].delta.content or ""
    assert seen == "one two"
    assert llm.cut_streams == 1


async def test_wrong_key_non_stream_and_models(llm: FakeOpenAI, oai: AsyncOpenAI) -> None:
    async with AsyncOpenAI(api_key="sk-wrong", base_url=llm.base_url, max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError) as err:
            await wrong.chat.completions.create(model="m", messages=[])
    assert err.value.code == "invalid_api_key"
    done = await oai.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=1)
    assert done.choices[0].message.content == "Hello" and done.choices[0].finish_reason == "length"
    assert [m.id async for m in oai.models.list()] == ["gpt-4o-mini"]
    assert llm.requests == [{"model": "gpt-4o-mini", "messages": [], "max_tokens": 1}]


@settings(max_examples=40, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=4))
def test_reply_text_keeps_the_text(text: str, words_per_chunk: int) -> None:
    assert "".join(Reply.text(text, words_per_chunk=words_per_chunk).chunks) == text


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}
