"""An HTTP-level fake of Slack: Web API, response URLs, signed deliveries to the app, and Socket Mode.

It is the end-to-end tests' Slack (``tests/fakes/slack.py`` re-exports it) and the workspace behind the
offline sandbox (``sandbox/workspace.py`` subclasses it and watches changes through ``_on_message`` and
``_on_response``).

Real clients (``slack_sdk.web.async_client.AsyncWebClient``, ``slack_bolt``, slack_sdk's Socket Mode
clients) talk to it over HTTP on 127.0.0.1 (a free port, read back after ``start()``)::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        ...
        await slack.wait_for(lambda: len(slack.bot_messages()) == 1)

It honours the facts in /work/shared/notes/slack-platform.md that a client can observe: the ``chat.update``
block rules and 4,000-character limit, ``parse``, HTTP 429 with ``Retry-After`` from a sliding-window limit,
``x-oauth-scopes`` on ``auth.test``, Slack's request signing, and Socket Mode envelopes that must be acked.
A method it does not model answers ``unknown_method`` and lands in ``unknown_methods`` so a test can fail
on it instead of getting a silently wrong answer.

Slack's AI-app surface (native streams, the thread status, ``agent_session_stopped``) lives in
``sandbox/slack_streams.py``; button presses as ``block_actions`` payloads (feedback buttons included) in
``sandbox/slack_actions.py``; Block Kit validation in ``sandbox/slack_blocks.py``; the records
(``Message``, ``Call``, ``Stream``…) in ``sandbox/slack_model.py``.

Nothing here polls or sleeps to wait: every served request (and every Socket Mode message) wakes the
``wait_for`` waiters, which re-check their predicate.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from sandbox.server import LocalServer
from sandbox.slack_actions import ActionsMixin
from sandbox.slack_blocks import MARKDOWN_TEXT_LIMIT
from sandbox.slack_blocks import validate_blocks as _validate_blocks
from sandbox.slack_files import FilesMixin
from sandbox.slack_model import ApiError as _ApiError
from sandbox.slack_model import Call, Edit, JSONDict, Message, StatusChange, Stream, TaskCard, seconds_header
from sandbox.slack_model import Failure as _Failure
from sandbox.slack_model import as_bool as _as_bool
from sandbox.slack_model import ts_key as _ts_key
from sandbox.slack_streams import AI_METHODS, STREAM_RATE_LIMITS, StreamsMixin

__all__ = [
    "AI_METHODS",
    "Call",
    "Edit",
    "FakeSlack",
    "JSONDict",
    "Message",
    "StatusChange",
    "Stream",
    "TaskCard",
    "sign_request",
]

# Arguments Slack accepts as JSON-encoded strings in form posts.
_JSON_ARGS = ("blocks", "attachments", "metadata", "unfurled_attachments", "chunks")

# The scope each modelled method needs (conversations.replies depends on the channel type: see _needed_scope).
_SCOPES: dict[str, str | None] = {
    "auth.test": None,
    "apps.connections.open": None,
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "conversations.replies": "channels:history",
    "conversations.history": "channels:history",
    "reactions.add": "reactions:write",
    "reactions.remove": "reactions:write",
    "users.info": "users:read",
    "chat.startStream": "chat:write",
    "chat.appendStream": "chat:write",
    "chat.stopStream": "chat:write",
    "assistant.threads.setStatus": "chat:write",  # or assistant:write (see _check_scope)
}

UPDATE_TEXT_LIMIT = 4_000  # chat.update: longer text fails with msg_too_long
POST_TEXT_TRUNCATE = 40_000  # chat.postMessage truncates longer text
RESPONSE_URL_POSTS = 5  # a response_url accepts this many posts
PAGE_LIMIT_MAX = 1_000  # conversations.replies/history: the most messages a page holds
# The app's event subscriptions (manifest.yml's bot_events) that decide which events a message produces.
MESSAGE_EVENTS = ("app_mention", "message.channels", "message.groups", "message.im")


def sign_request(signing_secret: str, timestamp: int | str, body: str) -> str:
    """``X-Slack-Signature`` for ``body`` sent at ``timestamp``, exactly as Slack computes it."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


class FakeSlack(FilesMixin, StreamsMixin, ActionsMixin, LocalServer):
    """One fake Slack workspace (one team, one bot). Use one instance per workspace."""

    def __init__(
        self,
        *,
        signing_secret: str = "test-signing-secret",
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        team_id: str = "T0001",
        api_app_id: str = "A0001",
        scopes: Iterable[str] = (
            "app_mentions:read",
            "channels:history",
            "chat:write",
            "commands",
            "files:read",
            "groups:history",
            "im:history",
            "reactions:read",
            "reactions:write",
            "users:read",
        ),
        team_domain: str = "fake-team",
        verification_token: str = "fake-verification-token",
        enforce_scopes: bool = True,
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
    ) -> None:
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.scopes: list[str] = list(scopes)
        self.team_domain = team_domain
        self.verification_token = verification_token
        self.enforce_scopes = enforce_scopes
        self.clock = clock
        self.host = host

        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.unknown_methods: list[str] = []
        self.not_in_channel: set[str] = set()
        self.users: dict[str, JSONDict] = {}
        # The events the app subscribes to (``channel_message_events`` sends only these).
        self.bot_events: set[str] = set(MESSAGE_EVENTS)
        # Per-method limits: at most N accepted calls in any `window` seconds (sliding log), else HTTP 429.
        # The stream methods start at Slack's tiers; `rate_windows` gives a method its own window.
        self.rate_limits: dict[str, int] = dict(STREAM_RATE_LIMITS)
        self.window: float = 60.0
        self.rate_windows: dict[str, float] = {}
        # Retry-After of the sliding-window limits: whole seconds, as Slack sends them (at least 1), or the
        # exact fraction (tests that must not wait whole seconds). slack_sdk's own rate-limit retry handler
        # parses the header with int() and fails on a fraction: use it only with clients that do not.
        self.fractional_retry_after = False
        self.rate_limited_count = 0
        # Server-side latency before answering, in seconds (a "*" key applies to every method).
        self.latency: dict[str, float] = {}
        self.responses: list[tuple[str, JSONDict]] = []
        self.last_command_response_key: str | None = None
        self.last_event_id: str | None = None
        self.last_action_response_key: str | None = None
        # Socket Mode
        self.socket_connections = 0
        self.envelopes: list[JSONDict] = []
        self.acks: dict[str, JSONDict] = {}

        self._ts_counter = itertools.count(1)
        self._ts_floor = 0  # microseconds since the epoch of the last ts handed out
        self._event_counter = itertools.count(1)
        self._key_counter = itertools.count(1)
        self._failures: dict[str, deque[_Failure]] = {}
        self._call_log: dict[str, deque[float]] = {}
        self._response_posts: dict[str, int] = {}
        self._sockets: list[tuple[web.WebSocketResponse, asyncio.Event]] = []
        self._change = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._port: int | None = None
        self._init_streams()
        self._init_files()

    # ------------------------------------------------------------------ lifecycle

    def _add_routes(self, app: web.Application) -> None:
        """The Web API, response URLs and Socket Mode. Subclasses may add routes."""
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_get("/socket", self._handle_socket)
        self._add_file_routes(app)

    async def start(self, port: int = 0) -> None:
        """Serve on ``port`` of ``host`` (0: a free port). Raises ``OSError`` when the port is taken."""
        app = web.Application(client_max_size=16 * 1024 * 1024)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        self._port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        self._cancel_timers()
        for ws, _ in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._changed()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL for ``AsyncWebClient(base_url=...)`` (ends with '/', as slack_sdk needs)."""
        return f"{self.url}/api/"

    @property
    def socket_url(self) -> str:
        return f"ws://{self.host}:{self.port}/socket"

    # ------------------------------------------------------------------ inspection helpers

    @property
    def update_limit_per_minute(self) -> int | None:
        """Limit for ``chat.update`` per ``window`` seconds (60 by default); None means unlimited."""
        return self.rate_limits.get("chat.update")

    @update_limit_per_minute.setter
    def update_limit_per_minute(self, value: int | None) -> None:
        if value is None:
            self.rate_limits.pop("chat.update", None)
        else:
            self.rate_limits["chat.update"] = value

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def thread(self, channel: str, thread_ts: str, *, include_deleted: bool = False) -> list[Message]:
        """The parent and its replies, in ts order (channel messages only: no ephemerals)."""
        found = [
            m
            for m in self.messages.values()
            if m.channel == channel
            and (m.ts == thread_ts or m.thread_ts == thread_ts)
            and m.ephemeral_user is None
            and (include_deleted or not m.deleted)
        ]
        return sorted(found, key=lambda m: _ts_key(m.ts))

    def bot_messages(self, channel: str | None = None, *, include_deleted: bool = False) -> list[Message]:
        """Messages the bot posted (not ephemeral), in ts order."""
        found = [
            m
            for m in self.messages.values()
            if m.bot_id == self.bot_id
            and m.ephemeral_user is None
            and (channel is None or m.channel == channel)
            and (include_deleted or not m.deleted)
        ]
        return sorted(found, key=lambda m: _ts_key(m.ts))

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[Message]:
        found = [
            m
            for m in self.messages.values()
            if m.ephemeral_user is not None
            and (user is None or m.ephemeral_user == user)
            and (channel is None or m.channel == channel)
        ]
        return sorted(found, key=lambda m: _ts_key(m.ts))

    def message(self, channel: str, ts: str) -> Message:
        return self.messages[(channel, ts)]

    # ------------------------------------------------------------------ scripting

    def add_user(self, user_id: str, name: str, *, real_name: str | None = None, **extra: Any) -> JSONDict:
        user: JSONDict = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": real_name or name.title(),
            "is_bot": False,
            "deleted": False,
            "tz": "Europe/London",
            "profile": {"display_name": name, "real_name": real_name or name.title()},
        }
        user.update(extra)
        self.users[user_id] = user
        return user

    def add_user_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U_ALICE",
        thread_ts: str | None = None,
        ts: str | None = None,
        blocks: list[Any] | None = None,
        files: list[JSONDict] | None = None,
    ) -> Message:
        """A human's message (visible to ``conversations.replies``). ``ts`` is unique and increasing.
        ``files``: objects from ``add_file``, shared with it."""
        if ts is None:
            ts = self._next_ts()
        else:
            if (channel, ts) in self.messages:
                raise ValueError(f"a message with ts {ts} already exists in {channel}")
            self._bump_ts(ts)
        thread_ts = self._thread_root(channel, thread_ts)
        msg = Message(
            channel=channel,
            ts=ts,
            thread_ts=thread_ts,
            user=user,
            text=text,
            blocks=blocks,
            posted_at=self.clock(),
            files=list(files) if files else None,
        )
        self.messages[(channel, ts)] = msg
        self._on_message(msg)
        self._changed()
        return msg

    def fail(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: float = 1,
        error: str | None = None,
        times: int = 1,
        apply: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        429 -> HTTP 429, ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``; 200 -> ``{"ok": false,
        "error": error}``; 5xx -> that HTTP status with an error body. ``error`` defaults to ``ratelimited``
        (429), ``internal_error`` (5xx) or ``fatal_error``. With ``apply=True`` the call takes effect anyway
        and only its answer is lost, like a response that never reached the client. ``retry_after`` may be
        a fraction (sent as given, e.g. "0.2"): see ``fractional_retry_after`` about slack_sdk.
        """
        if error is None:
            error = "ratelimited" if status == 429 else "internal_error" if status >= 500 else "fatal_error"
        self._failures.setdefault(method, deque()).append(_Failure(status, error, retry_after, times, apply))

    def response_url(self, key: str = "r1") -> str:
        """A response URL served by this fake; JSON posted to it lands in ``responses`` as (key, payload)."""
        return f"{self.url}/response/{key}"

    def responses_to(self, key: str) -> list[JSONDict]:
        return [payload for k, payload in self.responses if k == key]

    # ------------------------------------------------------------------ observing (for subclasses)

    def _on_message(self, msg: Message) -> None:
        """Called after a message is added, edited, deleted or reacted to. Does nothing here."""

    def _on_response(self, key: str, payload: JSONDict) -> None:
        """Called after a post to the response URL ``key`` is accepted. Does nothing here."""

    # ------------------------------------------------------------------ describing

    def describe(self, last: int = 15) -> str:
        """A readable summary of recent calls and messages (used in timeout messages)."""
        lines = [f"{len(self.calls)} calls; last {min(last, len(self.calls))}:"]
        for c in self.calls[-last:]:
            args = {k: (v if len(repr(v)) < 80 else repr(v)[:77] + "...") for k, v in c.args.items()}
            err = "" if c.ok else f" error={c.response.get('error')}"
            lines.append(f"  {c.http_method} {c.method} -> {c.status}{err} {args}")
        if self.unknown_methods:
            lines.append(f"unknown methods called: {self.unknown_methods}")
        lines.append(f"{len(self.messages)} messages:")
        for m in sorted(self.messages.values(), key=lambda m: _ts_key(m.ts))[-last:]:
            flags = " deleted" if m.deleted else ""
            flags += f" ephemeral({m.ephemeral_user})" if m.ephemeral_user else ""
            flags += f" stream({m.stream.state}, {len(m.stream.tasks)} cards)" if m.stream else ""
            text = m.text if len(m.text) < 80 else m.text[:77] + "..."
            lines.append(
                f"  {m.channel} {m.ts} thread={m.thread_ts} {m.user}{flags} edits={len(m.edits)}: {text!r}"
            )
        shown = {k: v.status for k, v in self._thread_statuses.items()}
        if shown:
            lines.append(f"thread statuses shown: {shown}")
        if self.envelopes:
            unacked = [e["envelope_id"] for e in self.envelopes if e["envelope_id"] not in self.acks]
            lines.append(f"{len(self.envelopes)} envelopes pushed, unacked: {unacked}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ ids

    def _next_ts(self) -> str:
        micros = 1_700_000_000_000_000 + 100 * next(self._ts_counter)
        micros = max(micros, self._ts_floor + 100)
        self._ts_floor = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _bump_ts(self, ts: str) -> None:
        whole, frac = _ts_key(ts)
        self._ts_floor = max(self._ts_floor, whole * 1_000_000 + frac)

    def _thread_root(self, channel: str, thread_ts: str | None) -> str | None:
        """Replies to a reply land in the parent's thread, as in Slack."""
        if thread_ts is None:
            return None
        parent = self.messages.get((channel, thread_ts))
        if parent is not None and parent.thread_ts is not None:
            return parent.thread_ts
        return thread_ts

    def _new_event_id(self) -> str:
        return f"Ev{next(self._event_counter):010d}FAKE"

    # ------------------------------------------------------------------ Web API

    async def _read_args(self, request: web.Request) -> tuple[JSONDict, str | None]:
        args: JSONDict = dict(request.query)
        if request.method == "POST" and request.body_exists:
            ctype = request.content_type
            if ctype == "application/json":
                raw = await request.read()
                if raw.strip():
                    try:
                        body = json.loads(raw)
                    except ValueError as e:
                        raise _ApiError("invalid_json") from e
                    if not isinstance(body, dict):
                        raise _ApiError("invalid_json")
                    args.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
            else:
                raw = await request.read()
                if raw.strip():
                    raise _ApiError("invalid_form_data")
        token: str | None = None
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        body_token = args.pop("token", None)
        if token is None and isinstance(body_token, str):
            token = body_token
        for name in _JSON_ARGS:
            value = args.get(name)
            if isinstance(value, str):
                try:
                    args[name] = json.loads(value)
                except ValueError as e:
                    error = "invalid_blocks_format" if name == "blocks" else "invalid_arguments"
                    raise _ApiError(error) from e
        return args, token

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        delay = self.latency.get(method, self.latency.get("*", 0.0))
        if delay:
            await asyncio.sleep(delay)
        at = self.clock()
        token: str | None = None
        args: JSONDict = {}
        headers: dict[str, str] = {}
        try:
            args, token = await self._read_args(request)
            status, body, headers = self._dispatch(method, args, token)
        except _ApiError as e:
            status, body, headers = e.status, {"ok": False, "error": e.error, **e.extra}, e.headers
        if status == 429:
            self.rate_limited_count += 1
        self.calls.append(
            Call(
                method=method,
                args=args,
                at=at,
                status=status,
                response=body,
                http_method=request.method,
                content_type=request.headers.get("Content-Type", "").split(";")[0].strip(),
                body_size=request.content_length or 0,
                token=token,
            )
        )
        self._changed()
        return web.json_response(body, status=status, headers=headers)

    def _dispatch(
        self, method: str, args: JSONDict, token: str | None
    ) -> tuple[int, JSONDict, dict[str, str]]:
        handler = self._handlers().get(method)
        unavailable = self.unavailable.get(method)
        if handler is None or unavailable == "unknown_method":
            if handler is None:
                self.unknown_methods.append(method)
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        self._refresh_streams()
        self._check_token(method, token)
        self._check_scope(method, args)
        if unavailable is not None:
            raise _ApiError(unavailable)
        failure = self._take_failure(method)
        if failure is None or failure.apply:
            self._check_rate_limit(method, args)
        result: JSONDict | None = None
        if failure is None or failure.apply:
            result = handler(args)
        if failure is not None:
            headers = {"Retry-After": seconds_header(failure.retry_after)} if failure.status == 429 else {}
            return failure.status, {"ok": False, "error": failure.error}, headers
        assert result is not None
        headers = {}
        if method == "auth.test":
            headers["x-oauth-scopes"] = ",".join(self.scopes)
            headers["x-accepted-oauth-scopes"] = ""
        return 200, result, headers

    def _handlers(self) -> dict[str, Callable[[JSONDict], JSONDict]]:
        return {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "users.info": self._users_info,
            **self._stream_handlers(),
        }

    def _check_token(self, method: str, token: str | None) -> None:
        if not token:
            raise _ApiError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise _ApiError("invalid_auth")
        wants_app_token = method == "apps.connections.open"
        if (token == self.app_token) != wants_app_token:
            raise _ApiError("not_allowed_token_type")

    def _needed_scope(self, method: str, args: JSONDict) -> str | None:
        if method in ("conversations.replies", "conversations.history"):
            channel = str(args.get("channel", ""))
            return {"D": "im:history", "G": "groups:history"}.get(channel[:1], "channels:history")
        return _SCOPES.get(method)

    def _check_scope(self, method: str, args: JSONDict) -> None:
        needed = self._needed_scope(method, args)
        if method == "assistant.threads.setStatus" and "assistant:write" in self.scopes:
            return  # the older scope, still accepted for now
        if self.enforce_scopes and needed is not None and needed not in self.scopes:
            raise _ApiError("missing_scope", needed=needed, provided=",".join(self.scopes))

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.popleft()
        return failure

    def _check_rate_limit(self, method: str, args: JSONDict) -> None:
        """Every limit on this call (the method's per workspace, and narrower ones such as the thread
        status per thread): all must have room, else HTTP 429 with the longest wait; then each counts it."""
        checks = self._keyed_rate_checks(method, args)
        limit = self.rate_limits.get(method)
        if limit is not None:
            window = self.rate_windows.get(method, self.window)
            checks.append((self._call_log.setdefault(method, deque()), limit, window))
        now = self.clock()
        wait = 0.0
        for log, limit, window in checks:
            while log and log[0] <= now - window:
                log.popleft()
            if len(log) >= limit:
                wait = max(wait, log[0] + window - now if log else window)
        if wait > 0:
            if self.fractional_retry_after:
                seconds = max(round(wait, 3), 0.001)
            else:
                seconds = max(1, math.ceil(wait))
            raise _ApiError("ratelimited", status=429, headers={"Retry-After": seconds_header(seconds)})
        for log, _, _ in checks:
            log.append(now)

    # --- methods

    def _auth_test(self, args: JSONDict) -> JSONDict:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_domain.replace("-", " ").title(),
            "user": "threadline",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, args: JSONDict) -> JSONDict:
        return {"ok": True, "url": f"{self.socket_url}?ticket={uuid.uuid4()}&app_id={self.api_app_id}"}

    def _require(self, args: JSONDict, name: str, error: str | None = None) -> str:
        value = args.get(name)
        if value is None or value == "":
            raise _ApiError(error or "invalid_arguments", response_metadata={"messages": [f"missing {name}"]})
        return str(value)

    def _content(self, args: JSONDict) -> tuple[str | None, list[Any] | None, str | None]:
        text = args.get("text")
        if text is not None and not isinstance(text, str):
            text = str(text)
        blocks = args.get("blocks")
        markdown_text = args.get("markdown_text")
        if markdown_text is not None and (text is not None or blocks is not None):
            raise _ApiError("markdown_text_conflict")
        if markdown_text is not None and len(markdown_text) > MARKDOWN_TEXT_LIMIT:
            raise _ApiError("msg_too_long")
        if not text and blocks is None and not markdown_text and not args.get("attachments"):
            raise _ApiError("no_text")
        if blocks is not None:
            _validate_blocks(blocks)
        return text, blocks, markdown_text

    def _chat_post_message(self, args: JSONDict) -> JSONDict:
        channel = self._require(args, "channel", "channel_not_found")
        if channel in self.not_in_channel:
            raise _ApiError("not_in_channel")
        text, blocks, markdown_text = self._content(args)
        if markdown_text is not None:
            text = markdown_text
        text = (text or "")[:POST_TEXT_TRUNCATE]
        ts = self._next_ts()
        msg = Message(
            channel=channel,
            ts=ts,
            thread_ts=self._thread_root(channel, args.get("thread_ts") or None),
            user=self.bot_user_id,
            text=text,
            blocks=blocks or None,
            bot_id=self.bot_id,
            unfurl_links=_as_bool(args.get("unfurl_links")),
            unfurl_media=_as_bool(args.get("unfurl_media")),
            parse=args.get("parse"),
            markdown_text=markdown_text,
            attachments=args.get("attachments"),
            args=dict(args),
            posted_at=self.clock(),
        )
        self.messages[(channel, ts)] = msg
        self._on_bot_reply(channel, msg.thread_ts)
        self._on_message(msg)
        return {"ok": True, "channel": channel, "ts": ts, "message": msg.to_api()}

    def _chat_post_ephemeral(self, args: JSONDict) -> JSONDict:
        channel = self._require(args, "channel", "channel_not_found")
        user = self._require(args, "user", "user_not_in_channel")
        if channel in self.not_in_channel:
            raise _ApiError("not_in_channel")
        text, blocks, markdown_text = self._content(args)
        ts = self._next_ts()
        msg = self.messages[(channel, ts)] = Message(
            channel=channel,
            ts=ts,
            thread_ts=self._thread_root(channel, args.get("thread_ts") or None),
            user=self.bot_user_id,
            text=markdown_text if markdown_text is not None else (text or ""),
            blocks=blocks or None,
            bot_id=self.bot_id,
            ephemeral_user=user,
            parse=args.get("parse"),
            markdown_text=markdown_text,
            args=dict(args),
            posted_at=self.clock(),
        )
        self._on_message(msg)
        return {"ok": True, "message_ts": ts}

    def _own_message(self, channel: str, ts: str, not_mine: str) -> Message:
        msg = self.messages.get((channel, ts))
        if msg is None or msg.deleted or msg.ephemeral_user is not None:
            raise _ApiError("message_not_found")
        if msg.bot_id != self.bot_id:
            raise _ApiError(not_mine)
        return msg

    def _chat_update(self, args: JSONDict) -> JSONDict:
        channel = self._require(args, "channel", "channel_not_found")
        ts = self._require(args, "ts", "message_not_found")
        msg = self._own_message(channel, ts, "cant_update_message")
        self._check_editable(msg, "chat.update")
        text = args.get("text")
        if text is not None and len(str(text)) > UPDATE_TEXT_LIMIT:
            raise _ApiError("msg_too_long")
        text, blocks, markdown_text = self._content(args)
        # Block rules: `blocks` given -> they replace the old ones (`[]` removes them);
        # text (or markdown_text) without blocks -> the blocks are removed; neither -> the blocks stay.
        if blocks is not None:
            msg.blocks = blocks or None
        elif text is not None or markdown_text is not None:
            msg.blocks = None
        if markdown_text is not None:
            msg.text = markdown_text
            msg.markdown_text = markdown_text
        elif text is not None:
            msg.text = text
            msg.markdown_text = None
        if "attachments" in args:
            msg.attachments = args["attachments"] or None
        msg.edits.append(
            Edit(
                at=self.clock(),
                text=msg.text,
                blocks=msg.blocks,
                parse=args.get("parse"),
                args=dict(args),
                ts=f"{time.time():.6f}",
            )
        )
        self._after_edit(msg)
        self._on_message(msg)
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": msg.text,
            "message": msg.to_api(),
        }

    def _chat_delete(self, args: JSONDict) -> JSONDict:
        channel = self._require(args, "channel", "channel_not_found")
        ts = self._require(args, "ts", "message_not_found")
        msg = self._own_message(channel, ts, "cant_delete_message")
        self._check_editable(msg, "chat.delete")
        msg.deleted = True
        self._on_message(msg)
        return {"ok": True, "channel": channel, "ts": ts}

    def _conversations_replies(self, args: JSONDict) -> JSONDict:
        channel = self._require(args, "channel", "channel_not_found")
        ts = self._require(args, "ts", "thread_not_found")
        anchor = self.messages.get((channel, ts))
        if anchor is None or anchor.deleted or anchor.ephemeral_user is not None:
            raise _ApiError("thread_not_found")
        root = anchor.thread_ts or anchor.ts
        thread = self.thread(channel, root)
        parent = next((m for m in thread if m.ts == root), None)
        replies = len([m for m in thread if m.is_reply])
        parent_user = parent.user if parent is not None else None
        return _page(
            thread,
            args,
            default_limit=1000,
            to_api=lambda m: m.to_api(
                reply_count=replies if m.ts == root else None, parent_user_id=parent_user
            ),
        )

    def _conversations_history(self, args: JSONDict) -> JSONDict:
        """The channel's top-level messages (thread replies excluded), newest first."""
        channel = self._require(args, "channel", "channel_not_found")
        if channel in self.not_in_channel:
            raise _ApiError("not_in_channel")
        top = [
            m
            for (c, _), m in self.messages.items()
            if c == channel and not m.is_reply and not m.deleted and m.ephemeral_user is None
        ]
        top.sort(key=lambda m: _ts_key(m.ts), reverse=True)
        return _page(top, args, default_limit=100, to_api=lambda m: m.to_api())

    def _reaction_target(self, args: JSONDict) -> tuple[Message, str]:
        channel = self._require(args, "channel", "channel_not_found")
        ts = self._require(args, "timestamp", "message_not_found")
        name = self._require(args, "name", "invalid_name")
        msg = self.messages.get((channel, ts))
        if msg is None or msg.deleted or msg.ephemeral_user is not None:
            raise _ApiError("message_not_found")
        return msg, name

    def _reactions_add(self, args: JSONDict) -> JSONDict:
        msg, name = self._reaction_target(args)
        users = msg.reactions.setdefault(name, set())
        if self.bot_user_id in users:
            raise _ApiError("already_reacted")
        users.add(self.bot_user_id)
        self._on_message(msg)
        return {"ok": True}

    def _reactions_remove(self, args: JSONDict) -> JSONDict:
        msg, name = self._reaction_target(args)
        users = msg.reactions.get(name, set())
        if self.bot_user_id not in users:
            raise _ApiError("no_reaction")
        users.discard(self.bot_user_id)
        if not users:
            del msg.reactions[name]
        self._on_message(msg)
        return {"ok": True}

    def _users_info(self, args: JSONDict) -> JSONDict:
        user_id = self._require(args, "user", "user_not_found")
        if user_id == self.bot_user_id:
            bot = {"id": user_id, "team_id": self.team_id, "name": "threadline", "is_bot": True}
            return {"ok": True, "user": bot}
        user = self.users.get(user_id)
        if user is None:
            if user_id[:1] not in ("U", "W"):
                raise _ApiError("user_not_found")
            name = user_id.split("_", 1)[-1].lower() if "_" in user_id else user_id.lower()
            user = self.add_user(user_id, name)
        return {"ok": True, "user": user}

    # ------------------------------------------------------------------ response URLs

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        try:
            if request.content_type == "application/json":
                payload = await request.json()
            else:
                form = await request.post()
                payload = json.loads(str(form.get("payload", "{}")))
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        used = self._response_posts.get(key, 0)
        if used >= RESPONSE_URL_POSTS:
            self._changed()
            return web.Response(status=404, text="used_url")
        self._response_posts[key] = used + 1
        self.responses.append((key, payload))
        self._on_response(key, payload)
        self._changed()
        return web.Response(text="ok")

    # ------------------------------------------------------------------ deliveries to the app (HTTP mode)

    def sign(self, body: str, timestamp: int | str) -> str:
        return sign_request(self.signing_secret, timestamp, body)

    def event_callback(self, event: JSONDict, *, event_id: str | None = None) -> JSONDict:
        """The Events API envelope around ``event`` (as posted over HTTP or carried in Socket Mode)."""
        event_id = event_id or self._new_event_id()
        self.last_event_id = event_id
        return {
            "token": self.verification_token,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }

    async def _deliver(
        self,
        app_url: str,
        body: str,
        content_type: str,
        *,
        timestamp: int | None,
        signature: str | None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        if self._session is None:
            raise RuntimeError("FakeSlack is not started")
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature if signature is not None else self.sign(body, ts),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        headers.update(extra_headers or {})
        async with self._session.post(app_url, data=body.encode(), headers=headers) as resp:
            return resp.status, await resp.text()

    async def send_event(
        self,
        app_url: str,
        event: JSONDict,
        *,
        event_id: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> tuple[int, str]:
        """POST ``event`` in an ``event_callback`` envelope to the app, signed; returns (status, body)."""
        body = json.dumps(self.event_callback(event, event_id=event_id))
        extra = {}
        if retry_num is not None:
            extra = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return await self._deliver(
            app_url, body, "application/json", timestamp=timestamp, signature=signature, extra_headers=extra
        )

    def _event_for(
        self,
        channel: str,
        full_text: str,
        *,
        user: str,
        thread_ts: str | None,
        ts: str | None,
        event_type: str,
        channel_type: str | None,
        files: list[JSONDict] | None = None,
    ) -> JSONDict:
        msg = self.add_user_message(channel, full_text, user=user, thread_ts=thread_ts, ts=ts, files=files)
        event: JSONDict = {
            "type": event_type,
            "user": user,
            "text": full_text,
            "ts": msg.ts,
            "channel": channel,
            "event_ts": msg.ts,
            "team": self.team_id,
            "client_msg_id": str(uuid.uuid4()),
        }
        if msg.thread_ts is not None:
            event["thread_ts"] = msg.thread_ts
            event["parent_user_id"] = self.messages.get((channel, msg.thread_ts), msg).user
        if channel_type is not None:
            event["channel_type"] = channel_type
        if files:
            # As Slack sends a message that shares files: the file objects, and for a `message`
            # event the subtype file_share (an app_mention carries the files without a subtype).
            event["files"] = list(files)
            event["upload"] = False
            if event_type == "message":
                event["subtype"] = "file_share"
                event["display_as_bot"] = False
        return event

    def mention_event(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U_ALICE",
        thread_ts: str | None = None,
        ts: str | None = None,
        files: list[JSONDict] | None = None,
    ) -> JSONDict:
        """Record ``<@bot> text`` from ``user`` and return the ``app_mention`` event for it (with the
        ``files`` from ``add_file`` shared with it)."""
        return self._event_for(
            channel,
            f"<@{self.bot_user_id}> {text}",
            user=user,
            thread_ts=thread_ts,
            ts=ts,
            event_type="app_mention",
            channel_type=None,
            files=files,
        )

    def message_event(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U_ALICE",
        thread_ts: str | None = None,
        ts: str | None = None,
        channel_type: str = "channel",
        files: list[JSONDict] | None = None,
    ) -> JSONDict:
        """Record a plain message and return its ``message`` event (``file_share`` with ``files``)."""
        return self._event_for(
            channel,
            text,
            user=user,
            thread_ts=thread_ts,
            ts=ts,
            event_type="message",
            channel_type=channel_type,
            files=files,
        )

    def channel_message_events(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U_ALICE",
        thread_ts: str | None = None,
        ts: str | None = None,
        channel_type: str = "channel",
    ) -> list[JSONDict]:
        """Record a person's message in a channel (``text`` as Slack stores it: ``<@UBOT>`` for a
        mention) and return every event Slack sends the app for it, as Slack does: an ``app_mention``
        when it mentions the bot, and a ``message`` event when the app subscribes to
        ``message.channels`` (``message.groups`` for a private channel, ``channel_type: "group"``),
        the message that mentions the bot included. None in a channel the bot is not a member of."""
        event = self.message_event(
            channel, text, user=user, thread_ts=thread_ts, ts=ts, channel_type=channel_type
        )
        return self.events_for(event)

    def events_for(self, message: JSONDict) -> list[JSONDict]:
        """The events Slack sends the app for the channel message whose ``message`` event this is
        (see ``channel_message_events``)."""
        if message["channel"] in self.not_in_channel:
            return []
        events: list[JSONDict] = []
        if "app_mention" in self.bot_events and f"<@{self.bot_user_id}" in str(message.get("text")):
            mention = {k: v for k, v in message.items() if k != "channel_type"}
            events.append({**mention, "type": "app_mention"})
        subscription = "message.groups" if message.get("channel_type") == "group" else "message.channels"
        if subscription in self.bot_events:
            events.append(message)
        return events

    def dm_event(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U_ALICE",
        thread_ts: str | None = None,
        ts: str | None = None,
        files: list[JSONDict] | None = None,
    ) -> JSONDict:
        """Record a DM and return its ``message`` event (``channel_type: "im"``)."""
        return self.message_event(
            channel, text, user=user, thread_ts=thread_ts, ts=ts, channel_type="im", files=files
        )

    def command_payload(
        self,
        *,
        command: str = "/ask",
        text: str = "",
        user_id: str = "U_ALICE",
        user_name: str = "alice",
        channel_id: str = "C0001",
        channel_name: str = "general",
    ) -> dict[str, str]:
        """A slash command's fields, with a fresh response URL (its key: ``last_command_response_key``)."""
        key = f"cmd{next(self._key_counter)}"
        self.last_command_response_key = key
        return {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self.response_url(key),
            "trigger_id": f"{next(self._key_counter)}.{self.team_id}.{uuid.uuid4().hex}",
        }

    async def send_command(
        self,
        app_url: str,
        *,
        command: str = "/ask",
        text: str = "",
        user_id: str = "U_ALICE",
        user_name: str = "alice",
        channel_id: str = "C0001",
        channel_name: str = "general",
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> tuple[int, str]:
        """POST a slash command, form-encoded and signed like Slack; returns (status, body)."""
        fields = self.command_payload(
            command=command,
            text=text,
            user_id=user_id,
            user_name=user_name,
            channel_id=channel_id,
            channel_name=channel_name,
        )
        return await self._deliver(
            app_url,
            urlencode(fields),
            "application/x-www-form-urlencoded",
            timestamp=timestamp,
            signature=signature,
        )

    def _complete_action(self, payload: JSONDict) -> JSONDict:
        payload = dict(payload)
        payload.setdefault("token", self.verification_token)
        payload.setdefault("team", {"id": self.team_id, "domain": self.team_domain})
        payload.setdefault("api_app_id", self.api_app_id)
        payload.setdefault("is_enterprise_install", False)
        return payload

    async def send_action(
        self,
        app_url: str,
        payload: JSONDict,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> tuple[int, str]:
        """POST an interactivity payload (``payload=<json>`` form field), signed; returns (status, body).

        ``token``, ``team``, ``api_app_id`` and ``is_enterprise_install`` are filled in when missing.
        """
        body = urlencode({"payload": json.dumps(self._complete_action(payload))})
        return await self._deliver(
            app_url, body, "application/x-www-form-urlencoded", timestamp=timestamp, signature=signature
        )

    # ------------------------------------------------------------------ Socket Mode

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        closed = asyncio.Event()
        entry = (ws, closed)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets) + 1,
                    "debug_info": {
                        "host": "fake-slack",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.api_app_id},
                }
            )
            self._sockets.append(entry)
            self.socket_connections += 1
            self._changed()
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(data, dict) and "envelope_id" in data:
                    self.acks[str(data["envelope_id"])] = data
                    self._changed()
        finally:
            closed.set()
            if entry in self._sockets:
                self._sockets.remove(entry)
            self._changed()
        return ws

    def _open_sockets(self) -> list[web.WebSocketResponse]:
        return [ws for ws, _ in self._sockets if not ws.closed]

    async def push_envelope(
        self,
        type: str,
        payload: JSONDict,
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Send an envelope over the newest Socket Mode connection (waiting for one); returns envelope_id.

        ``type`` is ``events_api`` (payload: an ``event_callback``, see ``event_callback()``),
        ``slash_commands`` or ``interactive``. Like Slack, ``events_api`` envelopes carry ``retry_attempt``
        (0 on the first delivery) and ``retry_reason`` ("" on the first delivery).
        """
        envelope_id = str(uuid.uuid4())
        envelope: JSONDict = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": type,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        broken: set[int] = set()

        def usable() -> list[web.WebSocketResponse]:
            return [ws for ws in self._open_sockets() if id(ws) not in broken]

        while True:
            await self.wait_for(lambda: bool(usable()), timeout)
            ws = usable()[-1]
            try:
                await ws.send_json(envelope)
                break
            except (ConnectionError, RuntimeError):
                broken.add(id(ws))
        self.envelopes.append(envelope)
        self._changed()
        return envelope_id

    async def push_event(
        self,
        event: JSONDict,
        *,
        event_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Push ``event`` (wrapped in ``event_callback``) as an ``events_api`` envelope."""
        return await self.push_envelope(
            "events_api",
            self.event_callback(event, event_id=event_id),
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )

    async def push_command(self, **fields: str) -> str:
        """Push a slash command (same arguments as ``command_payload``) as a ``slash_commands`` envelope."""
        return await self.push_envelope(
            "slash_commands", dict(self.command_payload(**fields)), accepts_response_payload=True
        )

    async def push_action(self, payload: JSONDict) -> str:
        """Push an interactivity payload as an ``interactive`` envelope."""
        return await self.push_envelope(
            "interactive",
            self._complete_action(payload),
            accepts_response_payload=payload.get("type") == "view_submission",
        )

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> JSONDict:
        """The client's ack for ``envelope_id`` (``{"envelope_id": ..., "payload": ...?}``)."""
        await self.wait_for(lambda: envelope_id in self.acks, timeout)
        return self.acks[envelope_id]

    async def disconnect_socket(self, *, grace: float = 1.0) -> None:
        """Send ``{"type": "disconnect", "reason": "refresh_requested"}`` on each connection, then close it.

        Slack closes the old connection some seconds after the warning; here the fake waits up to ``grace``
        seconds for the client to close it (slack_sdk does so while reconnecting), then closes it itself.
        """
        entries = [(ws, closed) for ws, closed in self._sockets if not ws.closed]
        for ws, _ in entries:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(
                    {
                        "type": "disconnect",
                        "reason": "refresh_requested",
                        "debug_info": {"host": "fake-slack"},
                    }
                )
        for ws, closed in entries:
            if grace > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), grace)
            if not ws.closed:
                await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"refresh_requested")


def _page(
    messages: list[Message], args: JSONDict, *, default_limit: int, to_api: Callable[[Message], JSONDict]
) -> JSONDict:
    """One page of a conversations.* listing, as Slack pages them: ``limit`` (at most ``PAGE_LIMIT_MAX``;
    fewer is fine), an opaque ``cursor`` from the previous page's ``response_metadata.next_cursor``
    (``invalid_cursor`` when it is not one), ``has_more``, and the messages' metadata only when
    ``include_all_metadata`` asks for it."""
    try:
        limit = min(max(int(args.get("limit") or default_limit), 1), PAGE_LIMIT_MAX)
    except (TypeError, ValueError):
        raise _ApiError("invalid_limit") from None
    offset = _cursor_offset(str(args.get("cursor") or ""))
    page = messages[offset : offset + limit]
    out = [to_api(m) for m in page]
    if _as_bool(args.get("include_all_metadata")):
        for message, data in zip(page, out, strict=True):
            if message.args.get("metadata"):
                data["metadata"] = message.args["metadata"]
    has_more = offset + limit < len(messages)
    return {
        "ok": True,
        "messages": out,
        "has_more": has_more,
        "response_metadata": {"next_cursor": _cursor(offset + limit) if has_more else ""},
    }


def _cursor(offset: int) -> str:
    """An opaque cursor (Slack's look like base64 of ``next_ts:…``)."""
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _cursor_offset(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.b64decode(cursor, validate=True).decode().partition(":")
        if kind == "offset" and value.isdigit():
            return int(value)
    except ValueError:
        pass
    raise _ApiError("invalid_cursor")
