"""The sandbox's workspace: the fake Slack (``sandbox/slack.py``) plus a page to use it as a person would.

On one port it serves Slack's Web API and response URLs (the bot's ``SLACK_API_URL`` points here) and the
page: ``GET /`` the HTML, ``GET /ui/stream`` a live feed (server-sent events: a snapshot, then every change
of a message as JSON), ``GET /ui/state`` the snapshot, and the person's actions, ``POST /ui/post`` (a
message), ``POST /ui/command`` (a slash command), ``POST /ui/action`` (a button press, feedback buttons
included), ``POST /ui/stop`` (Slack's Stop on a native stream) and ``POST /ui/shortcut`` (a message
shortcut: "Summarize thread"). Those become signed deliveries to the
bot's Events API endpoint (``app_url``), exactly as Slack would send them:

- a message that mentions ``@Threadline`` in a channel the bot is in → ``app_mention``;
- a message may carry built-in sample files (``"attach": ["image"]``, ``"text"``): shared as Slack shares
  files (``files`` on the event, ``file_share`` for a DM), served at their ``url_private``;
- every message in a channel the bot is in → ``message`` with ``channel_type: "channel"`` (the app
  subscribes to ``message.channels``), a mention too: the bot answers replies in threads it answered;
- any message in the DM with the bot → ``message`` with ``channel_type: "im"``;
- messages in a channel the bot is not in → nothing;
- ``/ask …`` → a form-encoded slash command with a response URL served here;
- a button → a ``block_actions`` interactivity payload with a response URL served here;
- "Summarize thread" on a message's menu → a ``message_action`` payload with a response URL served here;
- Stop on a streaming answer → Slack stops the stream and sends ``agent_session_stopped``.

The feed carries native streams as they grow (``message.stream``: Markdown segments, task cards, state)
and thread statuses (``assistant.threads.setStatus``) as ``{"type": "thread_status", ...}`` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode, urlparse

import aiohttp
from aiohttp import web

from sandbox.slack import FakeSlack, Message, StatusChange
from sandbox.slack_actions import ButtonNotFound, find_action
from sandbox.slack_files import sample_png

__all__ = ["CHANNELS", "Channel", "Workspace"]

logger = logging.getLogger("threadline.sandbox")

JSONDict = dict[str, Any]

PAGE = Path(__file__).with_name("page.html")
SLACKBOT = "USLACKBOT"
SUMMARIZE_CALLBACK_ID = "summarize_thread"  # manifest.yml's message shortcut
KEEPALIVE_SECONDS = 15.0
MAX_CALLS_KEPT = 500  # the Web API call log is for tests; the sandbox runs for hours
SAMPLE_NOTES = b"""# Release notes (sample)

- Threadline reads text files like this one into the prompt, fenced and named.
- Images go to the model as image parts.
"""
# What the composer's attach menu offers: (name, content, mimetype).
SAMPLES: dict[str, tuple[str, bytes, str]] = {
    "image": ("sample.png", sample_png(), "image/png"),
    "text": ("notes.md", SAMPLE_NOTES, "text/markdown"),
}


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    kind: Literal["channel", "im"]
    member: bool = True  # is the bot a member (may it post here)?
    topic: str = ""

    def to_json(self) -> JSONDict:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "member": self.member,
            "topic": self.topic,
        }


CHANNELS: tuple[Channel, ...] = (
    Channel("C0001", "general", "channel", topic="Mention @Threadline with a question, or use /ask"),
    Channel("C0002", "random", "channel", topic="Anything goes. Threadline is here too"),
    Channel(
        "C0003",
        "lounge",
        "channel",
        member=False,
        topic="Threadline is not in this channel: /ask answers privately here",
    ),
    Channel(
        "D0001", "Threadline", "im", topic="Your direct messages with Threadline: every message is a question"
    ),
)


@dataclass
class _ResponseTarget:
    """Where posts to a response URL land: the channel (and thread) of the command or button, and for a
    button the message it was on (``replace_original`` / ``delete_original``)."""

    channel: str
    thread_ts: str | None = None
    message_ts: str | None = None
    last_response_ts: str | None = None


class Workspace(FakeSlack):
    """One person ("you"), the bot, three channels and a DM, and the page to use them."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        user_id: str = "U0YOU",
        user_name: str = "you",
        bot_name: str = "Threadline",
        channels: Iterable[Channel] = CHANNELS,
        chat_update_limit: int | None = 50,
    ) -> None:
        super().__init__(
            signing_secret=secrets.token_hex(16),
            bot_token=f"xoxb-sandbox-{secrets.token_hex(12)}",
            app_token=f"xapp-sandbox-{secrets.token_hex(12)}",
            bot_user_id="U0BOT",
            bot_id="B0BOT",
            team_id="T0SANDBOX",
            team_domain="threadline-sandbox",
            host=host,
        )
        self.user_id = user_id
        self.user_name = user_name
        self.bot_name = bot_name
        self.channels: dict[str, Channel] = {c.id: c for c in channels}
        self.not_in_channel = {c.id for c in self.channels.values() if not c.member}
        self.add_user(user_id, user_name, real_name="You")
        # Slack's Tier 3 limit for chat.update: about 50 a minute per workspace.
        self.update_limit_per_minute = chat_update_limit
        self.app_url: str | None = None  # the bot's Events API endpoint; None while it is not running
        self.status: JSONDict = {"bot": "starting", "model": "", "demo": False}
        self.deliveries: list[tuple[str, JSONDict]] = []  # (kind, payload) handed to the bot, in order
        self._targets: dict[str, _ResponseTarget] = {}
        self._subscribers: set[asyncio.Queue[JSONDict | None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._action_keys = itertools.count(1)

    # ------------------------------------------------------------------ lifecycle

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_get("/", self._page)
        app.router.add_get("/ui/state", self._ui_state)
        app.router.add_get("/ui/stream", self._ui_stream)
        app.router.add_post("/ui/post", self._ui_post)
        app.router.add_post("/ui/command", self._ui_command)
        app.router.add_post("/ui/action", self._ui_action)
        app.router.add_post("/ui/stop", self._ui_stop)
        app.router.add_post("/ui/shortcut", self._ui_shortcut)

    async def stop(self) -> None:
        for queue in list(self._subscribers):
            queue.put_nowait(None)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().stop()

    def set_status(self, **changes: Any) -> None:
        """Change what the page shows about the bot and the model (``bot``: starting, ready, stopped)."""
        self.status.update(changes)
        self._publish({"type": "status", "status": dict(self.status)})

    # ------------------------------------------------------------------ Slack-like details

    def _next_ts(self) -> str:
        """Message timestamps from the wall clock (the page shows them), unique and increasing."""
        micros = max(int(time.time() * 1_000_000), self._ts_floor + 1)
        self._ts_floor = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def channel(self, channel_id: str) -> Channel:
        found = self.channels.get(channel_id)
        if found is None:
            raise web.HTTPBadRequest(text=f"unknown channel {channel_id!r}")
        return found

    def to_slack_text(self, typed: str) -> str:
        """What Slack stores for text a person typed: ``&``, ``<`` and ``>`` escaped, and ``@Threadline``
        (or ``@you``) turned into a user mention."""
        text = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        for name, user in ((self.bot_name, self.bot_user_id), (self.user_name, self.user_id)):
            text = re.sub(rf"(?<![\w@])@{re.escape(name)}\b", f"<@{user}>", text, flags=re.IGNORECASE)
        return text

    def note(self, channel: str, text: str, *, thread_ts: str | None = None) -> Message:
        """A message from Slackbot that only you can see (the workspace telling you something)."""
        msg = Message(
            channel=channel,
            ts=self._next_ts(),
            thread_ts=self._thread_root(channel, thread_ts),
            user=SLACKBOT,
            text=text,
            ephemeral_user=self.user_id,
            posted_at=self.clock(),
        )
        self.messages[(channel, msg.ts)] = msg
        self._on_message(msg)
        self._changed()
        logger.info("note in %s: %s", channel, text)
        return msg

    # ------------------------------------------------------------------ the live feed

    def _on_message(self, msg: Message) -> None:
        if len(self.calls) > 2 * MAX_CALLS_KEPT:
            del self.calls[:-MAX_CALLS_KEPT]
        if msg.ephemeral_user is None or msg.ephemeral_user == self.user_id:
            self._publish({"type": "message", "message": self.message_json(msg)})

    def _publish(self, event: JSONDict) -> None:
        for queue in self._subscribers:
            queue.put_nowait(event)

    def message_json(self, msg: Message) -> JSONDict:
        return {
            "channel": msg.channel,
            "ts": msg.ts,
            "thread_ts": msg.thread_ts,
            "user": msg.user,
            "text": msg.text,
            "blocks": msg.blocks,
            "bot": msg.bot_id is not None,
            "ephemeral": msg.ephemeral_user is not None,
            "via": msg.args.get("via"),
            "deleted": msg.deleted,
            "edits": len(msg.edits),
            "reactions": [
                {"name": name, "count": len(users), "users": sorted(users)}
                for name, users in msg.reactions.items()
                if users
            ],
            "stream": msg.stream.to_json() if msg.stream is not None else None,
            "files": [
                {"name": f.get("name"), "mimetype": f.get("mimetype"), "size": f.get("size")}
                for f in msg.files or []
            ],
        }

    def _on_status(self, change: StatusChange) -> None:
        self._publish({"type": "thread_status", **_status_json(change)})

    def snapshot(self) -> JSONDict:
        visible = [
            m
            for m in self.messages.values()
            if not m.deleted and (m.ephemeral_user is None or m.ephemeral_user == self.user_id)
        ]
        visible.sort(key=lambda m: float(m.ts))
        return {
            "type": "snapshot",
            "me": self.user_id,
            "bot_user_id": self.bot_user_id,
            "users": {self.user_id: self.user_name, self.bot_user_id: self.bot_name, SLACKBOT: "Slackbot"},
            "channels": [c.to_json() for c in self.channels.values()],
            "messages": [self.message_json(m) for m in visible],
            "thread_statuses": [_status_json(s) for s in self._thread_statuses.values()],
            "status": dict(self.status),
        }

    # ------------------------------------------------------------------ the page's endpoints

    def _check_origin(self, request: web.Request) -> None:
        """Only the page itself may act: no other site's page (a cross-site POST), no other host name
        (DNS rebinding)."""
        allowed = {f"{self.host}:{self.port}", f"localhost:{self.port}", f"127.0.0.1:{self.port}"}
        if request.host not in allowed:
            raise web.HTTPForbidden(text="unexpected Host")
        origin = request.headers.get("Origin")
        if origin is not None and urlparse(origin).netloc not in allowed:
            raise web.HTTPForbidden(text="cross-origin requests are refused")

    async def _json_body(self, request: web.Request) -> JSONDict:
        self._check_origin(request)
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send JSON")
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="invalid JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return data

    async def _page(self, request: web.Request) -> web.StreamResponse:
        self._check_origin(request)
        return web.Response(
            text=PAGE.read_text(encoding="utf-8"),
            content_type="text/html",
            headers={"Cache-Control": "no-store"},
        )

    async def _ui_state(self, request: web.Request) -> web.StreamResponse:
        self._check_origin(request)
        return web.json_response(self.snapshot())

    async def _ui_stream(self, request: web.Request) -> web.StreamResponse:
        self._check_origin(request)
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        queue: asyncio.Queue[JSONDict | None] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            await resp.write(_sse(self.snapshot()))
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                if event is None:
                    break
                await resp.write(_sse(event))
        except ConnectionError:
            pass  # the page went away
        finally:
            self._subscribers.discard(queue)
        return resp

    async def _ui_post(self, request: web.Request) -> web.StreamResponse:
        """You write a message (in a channel, a thread, or the DM)."""
        data = await self._json_body(request)
        channel = self.channel(str(data.get("channel", "")))
        typed = str(data.get("text") or "").strip()
        attach = data.get("attach") or []
        if not isinstance(attach, list) or any(a not in SAMPLES for a in attach):
            raise web.HTTPBadRequest(text=f"attach: a list of {', '.join(SAMPLES)}")
        files = [self._sample(str(kind)) for kind in attach]
        if not typed and not files:
            raise web.HTTPBadRequest(text="empty message")
        thread_ts = str(data["thread_ts"]) if data.get("thread_ts") else None
        text = self.to_slack_text(typed)
        mentioned = f"<@{self.bot_user_id}>" in text
        if channel.kind == "im":
            event = self._event_for(
                channel.id,
                text,
                user=self.user_id,
                thread_ts=thread_ts,
                ts=None,
                event_type="message",
                channel_type="im",
                files=files,
            )
            self._deliver_event(event)
            ts = str(event["ts"])
        elif channel.member:
            # As Slack: app_mention when it mentions the bot, and (message.channels) a message event
            # for every message; the bot answers a reply without a mention in a thread it answered.
            event = self.message_event(channel.id, text, user=self.user_id, thread_ts=thread_ts, files=files)
            self._deliver_events(self.events_for(event))
            ts = str(event["ts"])
        else:
            msg = self.add_user_message(channel.id, text, user=self.user_id, thread_ts=thread_ts, files=files)
            ts = msg.ts
            if mentioned:
                self.note(
                    channel.id,
                    f"You mentioned <@{self.bot_user_id}>, but it's not in this channel, so it wasn't "
                    "notified. Use `/ask` here for a private answer.",
                    thread_ts=msg.thread_ts,
                )
        return web.json_response({"ok": True, "ts": ts})

    def _sample(self, kind: str) -> JSONDict:
        name, content, mimetype = SAMPLES[kind]
        return self.add_file(name, content, mimetype=mimetype, user=self.user_id)

    async def _ui_command(self, request: web.Request) -> web.StreamResponse:
        """You run a slash command (``{"channel", "command": "/ask", "text"}``)."""
        data = await self._json_body(request)
        channel = self.channel(str(data.get("channel", "")))
        command = str(data.get("command") or "").strip()
        if not re.fullmatch(r"/[\w-]+", command):
            raise web.HTTPBadRequest(text="a command looks like /ask")
        thread_ts = str(data["thread_ts"]) if data.get("thread_ts") else None
        fields = self.command_payload(
            command=command,
            text=str(data.get("text") or "").strip(),
            user_id=self.user_id,
            user_name=self.user_name,
            channel_id=channel.id,
            channel_name="directmessage" if channel.kind == "im" else channel.name,
        )
        key = self.last_command_response_key
        assert key is not None
        target = _ResponseTarget(channel=channel.id, thread_ts=self._thread_root(channel.id, thread_ts))
        self._targets[key] = target
        self.deliveries.append(("command", dict(fields)))
        self._spawn(self._send_command(command, fields, target))
        return web.json_response({"ok": True})

    async def _ui_action(self, request: web.Request) -> web.StreamResponse:
        """You press a button (``{"channel", "ts", "action_id", "block_id"?, "value"?}``; ``value`` picks
        the side of feedback buttons)."""
        data = await self._json_body(request)
        channel = self.channel(str(data.get("channel", "")))
        msg = self.messages.get((channel.id, str(data.get("ts", ""))))
        if msg is None or msg.deleted:
            raise web.HTTPNotFound(text="no such message")
        try:
            action = find_action(
                msg.blocks,
                action_id=str(data.get("action_id") or "") or None,
                block_id=str(data["block_id"]) if data.get("block_id") else None,
                value=str(data["value"]) if data.get("value") is not None else None,
            )
        except ButtonNotFound:
            raise web.HTTPNotFound(text="no such button on that message") from None
        key = f"act{next(self._action_keys)}"
        self._targets[key] = _ResponseTarget(channel=channel.id, thread_ts=msg.thread_ts, message_ts=msg.ts)
        payload = self.block_actions_payload(
            msg,
            action,
            user=self.user_id,
            channel_name="directmessage" if channel.kind == "im" else channel.name,
            response_url=self.response_url(key),
        )
        self.deliveries.append(("action", payload))
        self._spawn(self._send_action(payload, channel.id, msg.thread_ts))
        return web.json_response({"ok": True})

    async def _ui_shortcut(self, request: web.Request) -> web.StreamResponse:
        """You pick a message shortcut on a message (``{"channel", "ts", "callback_id"?}``; default
        "Summarize thread"): the bot gets a signed ``message_action`` payload with a response URL
        whose posts show in the message's thread."""
        data = await self._json_body(request)
        channel = self.channel(str(data.get("channel", "")))
        msg = self.messages.get((channel.id, str(data.get("ts", ""))))
        if msg is None or msg.deleted or msg.ephemeral_user is not None:
            raise web.HTTPNotFound(text="no such message")
        key = f"act{next(self._action_keys)}"
        thread_ts = msg.thread_ts or msg.ts
        self._targets[key] = _ResponseTarget(channel=channel.id, thread_ts=thread_ts)
        payload = self.shortcut_payload(
            channel.id,
            msg.ts,
            user=self.user_id,
            callback_id=str(data.get("callback_id") or SUMMARIZE_CALLBACK_ID),
            channel_name="directmessage" if channel.kind == "im" else channel.name,
            response_url=self.response_url(key),
        )
        self.deliveries.append(("shortcut", payload))
        self._spawn(self._send_action(payload, channel.id, thread_ts))
        return web.json_response({"ok": True, "thread_ts": thread_ts})

    async def _ui_stop(self, request: web.Request) -> web.StreamResponse:
        """You press Slack's Stop on a streaming answer (``{"channel", "thread_ts"}``): its streams stop and
        the bot gets ``agent_session_stopped``."""
        data = await self._json_body(request)
        channel = self.channel(str(data.get("channel", "")))
        thread_ts = str(data.get("thread_ts") or "")
        if not thread_ts:
            raise web.HTTPBadRequest(text="which thread?")
        event = self.agent_session_stopped_event(channel.id, thread_ts, user=self.user_id)
        self._deliver_event(event)
        return web.json_response({"ok": True, "stopped": event["streaming_message_ts"]})

    # ------------------------------------------------------------------ deliveries to the bot

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _deliver_event(self, event: JSONDict) -> None:
        self._deliver_events([event])

    def _deliver_events(self, events: list[JSONDict]) -> None:
        """Send ``events`` one after the other (one message's ``app_mention`` before its ``message``)."""
        self.deliveries.extend(("event", event) for event in events)

        async def send() -> None:
            for event in events:
                await self._send_event(event)

        if events:
            self._spawn(send())

    def _bot_url(self, channel: str, thread_ts: str | None) -> str | None:
        if self.app_url is None:
            self.note(channel, "Threadline isn't running right now (see the terminal).", thread_ts=thread_ts)
        return self.app_url

    async def _send_event(self, event: JSONDict) -> None:
        channel, thread_ts = str(event["channel"]), event.get("thread_ts") or str(event["ts"])
        url = self._bot_url(channel, thread_ts)
        if url is None:
            return
        outcome = await self._attempt(lambda: self.send_event(url, event))
        if outcome is not None:
            self.note(channel, f"Threadline didn't take the event: {outcome}.", thread_ts=thread_ts)

    async def _send_command(self, command: str, fields: dict[str, str], target: _ResponseTarget) -> None:
        url = self._bot_url(target.channel, target.thread_ts)
        if url is None:
            return
        body = ""

        async def send() -> tuple[int, str]:
            nonlocal body
            status, body = await self._deliver(
                url, urlencode(fields), "application/x-www-form-urlencoded", timestamp=None, signature=None
            )
            return status, body

        outcome = await self._attempt(send)
        if outcome is not None:
            self.note(
                target.channel,
                f'`{command}` failed with the error "dispatch_failed" ({outcome}).',
                thread_ts=target.thread_ts,
            )
            return
        reply = _ack_payload(body)
        if reply is not None:  # ack(text=...) answers the command privately
            self._respond(target, reply)

    async def _send_action(self, payload: JSONDict, channel: str, thread_ts: str | None) -> None:
        url = self._bot_url(channel, thread_ts)
        if url is None:
            return
        outcome = await self._attempt(lambda: self.send_action(url, payload))
        if outcome is not None:
            self.note(channel, f"Threadline didn't take the button press: {outcome}.", thread_ts=thread_ts)

    async def _attempt(self, send: Callable[[], Any]) -> str | None:
        """Deliver once (Slack's 3 s ack deadline applies); None when the bot answered 200, else why not."""
        try:
            async with asyncio.timeout(3.0):
                status, _ = await send()
        except TimeoutError:
            return "it didn't answer within 3 seconds"
        except aiohttp.ClientError as err:
            return f"cannot reach it ({type(err).__name__})"
        if status != 200:
            return f"it answered HTTP {status}"
        return None

    # ------------------------------------------------------------------ response URLs

    def _on_response(self, key: str, payload: JSONDict) -> None:
        target = self._targets.get(key)
        if target is not None:
            self._respond(target, payload)

    def _respond(self, target: _ResponseTarget, payload: JSONDict) -> None:
        """Show a post to a response URL (or a command's ack body) as Slack would."""
        original = target.message_ts or target.last_response_ts
        if original is not None and (payload.get("delete_original") or payload.get("replace_original")):
            msg = self.messages.get((target.channel, original))
            if msg is not None and not msg.deleted:
                if _as_bool(payload.get("delete_original")):
                    msg.deleted = True
                else:
                    msg.text = str(payload.get("text") or "")
                    msg.blocks = payload.get("blocks") or None
                self._on_message(msg)
                self._changed()
                return
        in_channel = payload.get("response_type") == "in_channel"
        msg = Message(
            channel=target.channel,
            ts=self._next_ts(),
            thread_ts=target.thread_ts,
            user=self.bot_user_id,
            text=str(payload.get("text") or ""),
            blocks=payload.get("blocks") or None,
            bot_id=self.bot_id,
            ephemeral_user=None if in_channel else self.user_id,
            args={"via": "response_url"},
            posted_at=self.clock(),
        )
        self.messages[(target.channel, msg.ts)] = msg
        target.last_response_ts = msg.ts
        self._on_message(msg)
        self._changed()


def _sse(event: JSONDict) -> bytes:
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def _as_bool(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _ack_payload(body: str) -> JSONDict | None:
    """The message in a command's ack body, if any (a JSON object with text or blocks, or plain text)."""
    body = body.strip()
    if not body:
        return None
    with contextlib.suppress(ValueError):
        data = json.loads(body)
        if isinstance(data, dict):
            return data if data.get("text") or data.get("blocks") else None
    return {"text": body}


def _status_json(change: StatusChange) -> JSONDict:
    return {
        "channel": change.channel,
        "thread_ts": change.thread_ts,
        "status": change.status,
        "loading_messages": change.loading_messages,
    }
