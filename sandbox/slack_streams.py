"""Slack's AI-app surface in the fake: native streams (``chat.startStream`` / ``chat.appendStream`` /
``chat.stopStream``), the thread status (``assistant.threads.setStatus``) and the person's Stop
(``agent_session_stopped``). Mixed into ``FakeSlack``; see ``/work/shared/notes/slack-platform.md``.

What it enforces, and where each rule comes from (Slack's method reference, slack_sdk's source, and
behaviour other teams measured against real workspaces, marked *measured*):

- a stream is a reply: ``thread_ts`` missing or empty → ``invalid_thread_ts`` (*measured*); outside a DM
  (channel ids not starting with ``D``) ``recipient_user_id`` → ``missing_recipient_user_id``, then
  ``recipient_team_id`` → ``missing_recipient_team_id`` (*measured*: the user alone earns the second);
- ``markdown_text`` (the argument or a ``markdown_text`` chunk) at most 12,000 characters a call, and
  ``stream_text_limit`` (12,000) for the whole message: past either, ``msg_too_long`` and nothing applied;
- chunks: ``markdown_text`` {text}, ``task_update`` {id, title, status, details?, output?, sources?} with
  status ``pending|in_progress|complete|error`` and fields of at most 256 characters, ``plan_update``
  {title}, ``blocks`` {blocks}; anything else → ``invalid_arguments``. A later ``task_update`` with the
  same id replaces the card's title and status and adds to its details and output (*measured*);
- a stream opened with ``markdown_text`` alone takes no chunks afterwards → ``streaming_mode_mismatch``
  (*measured*; ``stream_mode_lock = False`` turns it off); an append with nothing in it → ``no_text``;
- a stream ends ``stream_lifetime`` seconds (300) after it started, appends or not (*measured*: ~5 min);
  then, and after ``chat.stopStream``, append and stop answer ``message_not_in_streaming_state``; after
  the person's Stop an append answers ``stopped_by_user`` (Slack's reference) and a stop
  ``message_not_in_streaming_state``;
- while a stream is live, ``chat.update`` answers ``streaming_state_conflict`` and ``chat.delete``
  ``cant_delete_message`` (*measured*); once it ended both work, and an update replaces what it shows;
- ``chat.stopStream`` ``blocks`` are validated (``context_actions`` with ``feedback_buttons``: at most 5
  elements) and shown under the text; ``metadata`` must have ``event_type`` and ``event_payload``;
- the thread status: ``status: ""`` clears it, so does the app's next reply in the thread (a post or a
  stream) and Slack's 2-minute timeout (``status_timeout``); ``loading_messages`` at most 10; at most
  ``status_limit_per_thread`` calls (1 per second) per thread, else HTTP 429;
- a workspace without these methods: ``disable_ai_methods("unknown_method" | "not_allowed" | …)``.

Rate limits per workspace are the fake's ordinary ``rate_limits`` (defaults in ``STREAM_RATE_LIMITS``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sandbox.slack_blocks import MARKDOWN_TEXT_LIMIT, validate_blocks
from sandbox.slack_model import (
    ApiError,
    JSONDict,
    Message,
    StatusChange,
    Stream,
    StreamState,
    TaskCard,
    invalid_arguments,
)

__all__ = ["AI_METHODS", "STREAM_METHODS", "STREAM_RATE_LIMITS", "StreamsMixin"]

STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")
AI_METHODS = (*STREAM_METHODS, "assistant.threads.setStatus")
# Tier 2 (20+ a minute), Tier 4 (100+), Tier 2: per workspace, per method.
STREAM_RATE_LIMITS = {"chat.startStream": 20, "chat.appendStream": 100, "chat.stopStream": 20}
TASK_STATUSES = ("pending", "in_progress", "complete", "error")
CHUNK_FIELD_LIMIT = 256  # task_update / plan_update text fields
LOADING_MESSAGES_MAX = 10

Handler = Callable[[JSONDict], JSONDict]
RateCheck = tuple[deque[float], int, float]  # (log of accepted calls, limit, window in seconds)


class StreamsMixin:
    """The stream methods, the thread status and their test helpers (mixed into ``FakeSlack``)."""

    if TYPE_CHECKING:
        messages: dict[tuple[str, str], Message]
        clock: Callable[[], float]
        bot_id: str
        bot_user_id: str
        not_in_channel: set[str]

        def _next_ts(self) -> str: ...
        def _thread_root(self, channel: str, thread_ts: str | None) -> str | None: ...
        def _on_message(self, msg: Message) -> None: ...
        def _changed(self) -> None: ...
        def _require(self, args: JSONDict, name: str, error: str | None = None) -> str: ...
        def thread(self, channel: str, thread_ts: str, *, include_deleted: bool = False) -> list[Message]: ...

    def _init_streams(self) -> None:
        self.stream_lifetime: float = 300.0  # seconds from chat.startStream to Slack ending the stream
        self.stream_text_limit: int = 12_000  # Markdown characters in one streamed message, in total
        self.stream_mode_lock: bool = True  # a stream opened with markdown_text refuses chunks
        self.status_timeout: float = 120.0  # Slack removes a thread status after this long without a reply
        self.status_limit_per_thread: tuple[int, float] | None = (1, 1.0)  # (calls, seconds) per thread
        self.unavailable: dict[str, str] = {}  # method -> the error it answers (the workspace lacks it)
        self.statuses: list[StatusChange] = []  # every status shown or cleared, in order
        self._thread_statuses: dict[tuple[str, str], StatusChange] = {}
        self._status_logs: dict[tuple[str, str], deque[float]] = {}
        self._live_streams: set[tuple[str, str]] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    # ------------------------------------------------------------------ switches and inspection

    def disable_ai_methods(self, error: str = "unknown_method", methods: Iterable[str] = AI_METHODS) -> None:
        """Make ``methods`` unavailable in this workspace: ``unknown_method`` answers exactly as for a
        method Slack does not have (HTTP 200, ``req_method``); any other ``error`` (``not_allowed``,
        ``feature_not_enabled``, ``access_denied``…) is answered after the token and scope checks."""
        for method in methods:
            self.unavailable[method] = error

    def enable_ai_methods(self) -> None:
        self.unavailable.clear()

    def streams(self, channel: str | None = None) -> list[Message]:
        """Messages that began as native streams (deleted ones too), in ts order."""
        self._refresh_streams()
        found = [m for m in self.messages.values() if m.stream is not None]
        found = [m for m in found if channel is None or m.channel == channel]
        return sorted(found, key=lambda m: float(m.ts))

    def expire_stream(self, channel: str, ts: str) -> None:
        """End a live stream now, as Slack does when its lifetime is over."""
        msg = self.messages[(channel, ts)]
        if msg.stream is not None and msg.stream.live:
            self._end_stream(msg, "expired")

    def thread_status(self, channel: str, thread_ts: str) -> str:
        """The status the thread shows now ("" for none)."""
        self._refresh_statuses()
        shown = self._thread_statuses.get((channel, self._thread_root(channel, thread_ts) or thread_ts))
        return shown.status if shown is not None else ""

    def status_history(self, channel: str | None = None, thread_ts: str | None = None) -> list[StatusChange]:
        """Statuses shown and cleared (``status == ""``, with the ``source`` that cleared it), in order."""
        self._refresh_statuses()
        return [
            s
            for s in self.statuses
            if (channel is None or s.channel == channel) and (thread_ts is None or s.thread_ts == thread_ts)
        ]

    def agent_session_stopped_event(self, channel: str, thread_ts: str, *, user: str = "U_ALICE") -> JSONDict:
        """``user`` presses Slack's Stop in the thread: its live streams stop (appends then answer
        ``stopped_by_user``), and this returns the ``agent_session_stopped`` event to deliver with
        ``send_event`` / ``push_event``; ``streaming_message_ts`` lists the streams Slack stopped."""
        self._refresh_streams()
        root = self._thread_root(channel, thread_ts) or thread_ts
        stopped: list[str] = []
        for msg in self.thread(channel, root):
            if msg.stream is not None and msg.stream.live and msg.bot_id == self.bot_id:
                self._end_stream(msg, "stopped_by_user")
                stopped.append(msg.ts)
        return {
            "type": "agent_session_stopped",
            "channel": channel,
            "thread_ts": root,
            "user": user,
            "streaming_message_ts": stopped,
            "event_ts": f"{time.time():.6f}",
        }

    # ------------------------------------------------------------------ hooks used by FakeSlack

    def _on_status(self, change: StatusChange) -> None:
        """Called after a thread status is shown or cleared. Does nothing here."""

    def _stream_handlers(self) -> dict[str, Handler]:
        return {
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "assistant.threads.setStatus": self._assistant_threads_set_status,
        }

    def _keyed_rate_checks(self, method: str, args: JSONDict) -> list[RateCheck]:
        """Limits narrower than the workspace's: the thread status, per thread."""
        if method != "assistant.threads.setStatus" or self.status_limit_per_thread is None:
            return []
        channel, thread_ts = str(args.get("channel_id") or ""), str(args.get("thread_ts") or "")
        key = (channel, self._thread_root(channel, thread_ts) or thread_ts)
        limit, window = self.status_limit_per_thread
        return [(self._status_logs.setdefault(key, deque()), limit, window)]

    def _check_editable(self, msg: Message, method: str) -> None:
        """A live stream belongs to the streaming API: no edits, no deletion."""
        self._refresh_streams()
        if msg.stream is not None and msg.stream.live:
            raise ApiError("streaming_state_conflict" if method == "chat.update" else "cant_delete_message")

    def _after_edit(self, msg: Message) -> None:
        if msg.stream is not None:
            msg.stream.replaced = True

    def _on_bot_reply(self, channel: str, thread_ts: str | None) -> None:
        """The app replied in a thread: Slack clears the thread's status."""
        if thread_ts is not None and (channel, thread_ts) in self._thread_statuses:
            del self._thread_statuses[(channel, thread_ts)]
            self._status_change(StatusChange(self.clock(), channel, thread_ts, "", None, "reply"))

    def _cancel_timers(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    # ------------------------------------------------------------------ the methods

    def _chat_start_stream(self, args: JSONDict) -> JSONDict:
        channel = self._require(args, "channel", "channel_not_found")
        if channel in self.not_in_channel:
            raise ApiError("not_in_channel")
        thread_ts = args.get("thread_ts")
        if not isinstance(thread_ts, str) or not thread_ts:
            raise ApiError("invalid_thread_ts")
        user, team = args.get("recipient_user_id"), args.get("recipient_team_id")
        if not channel.startswith("D"):
            if not user:
                raise ApiError("missing_recipient_user_id")
            if not team:
                raise ApiError("missing_recipient_team_id")
        mode = args.get("task_display_mode")
        if mode not in (None, "timeline", "plan"):
            raise invalid_arguments(
                "task_display_mode must be timeline or plan [json-pointer:/task_display_mode]"
            )
        chunks, form = _content(args)
        stream = Stream(
            started_at=self.clock(),
            recipient_user_id=str(user) if user else None,
            recipient_team_id=str(team) if team else None,
            task_display_mode=mode,
        )
        self._check_fits(stream, chunks, form)
        root = self._thread_root(channel, thread_ts)
        msg = Message(
            channel=channel,
            ts=self._next_ts(),
            thread_ts=root,
            user=self.bot_user_id,
            text="",
            bot_id=self.bot_id,
            args=dict(args),
            posted_at=self.clock(),
            stream=stream,
        )
        _apply(msg, stream, chunks, form)
        self.messages[(channel, msg.ts)] = msg
        self._live_streams.add((channel, msg.ts))
        self._later(self.stream_lifetime, self._refresh_streams)
        self._on_bot_reply(channel, root)
        self._on_message(msg)
        return {"ok": True, "channel": channel, "ts": msg.ts}

    def _chat_append_stream(self, args: JSONDict) -> JSONDict:
        msg, stream = self._stream_of(args)
        if stream.state == "stopped_by_user":
            raise ApiError("stopped_by_user")
        if not stream.live:
            raise ApiError("message_not_in_streaming_state")
        chunks, form = _content(args)
        if not chunks:
            raise ApiError("no_text")
        self._check_fits(stream, chunks, form)
        _apply(msg, stream, chunks, form)
        stream.calls += 1
        self._on_message(msg)
        return {"ok": True, "channel": msg.channel, "ts": msg.ts}

    def _chat_stop_stream(self, args: JSONDict) -> JSONDict:
        msg, stream = self._stream_of(args)
        if not stream.live:
            raise ApiError("message_not_in_streaming_state")
        chunks, form = _content(args)
        blocks = args.get("blocks")
        if blocks is not None:
            validate_blocks(blocks)
        metadata = args.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        ):
            raise ApiError("invalid_metadata_format")
        self._check_fits(stream, chunks, form)
        _apply(msg, stream, chunks, form)
        stream.calls += 1
        stream.final_blocks = blocks or None
        msg.blocks = blocks or None
        if metadata is not None:
            stream.metadata = metadata
            msg.args["metadata"] = metadata
        self._end_stream(msg, "completed")
        return {"ok": True, "channel": msg.channel, "ts": msg.ts, "message": msg.to_api()}

    def _assistant_threads_set_status(self, args: JSONDict) -> JSONDict:
        channel = self._require(args, "channel_id", "channel_not_found")
        if channel in self.not_in_channel:
            raise ApiError("channel_not_found")
        thread_ts = args.get("thread_ts")
        if not isinstance(thread_ts, str) or not thread_ts:
            raise ApiError("invalid_thread_ts")
        status = args.get("status")
        if not isinstance(status, str):
            raise invalid_arguments("missing required field: status [json-pointer:/status]")
        loading = args.get("loading_messages")
        if loading is not None and (
            not isinstance(loading, list)
            or not all(isinstance(m, str) and m for m in loading)
            or len(loading) > LOADING_MESSAGES_MAX
        ):
            raise invalid_arguments(
                f"must be 1 to {LOADING_MESSAGES_MAX} strings [json-pointer:/loading_messages]"
            )
        root = self._thread_root(channel, thread_ts) or thread_ts
        change = StatusChange(self.clock(), channel, root, status, loading, "api")
        if status:
            self._thread_statuses[(channel, root)] = change
            self._later(self.status_timeout, self._refresh_statuses)
        else:
            self._thread_statuses.pop((channel, root), None)
        self._status_change(change)
        return {"ok": True}

    # ------------------------------------------------------------------ internals

    def _stream_of(self, args: JSONDict) -> tuple[Message, Stream]:
        channel = self._require(args, "channel", "channel_not_found")
        ts = self._require(args, "ts", "message_not_found")
        self._refresh_streams()
        msg = self.messages.get((channel, ts))
        if msg is None or msg.deleted or msg.ephemeral_user is not None:
            raise ApiError("message_not_found")
        if msg.bot_id != self.bot_id:
            raise ApiError("message_not_owned_by_app")
        if msg.stream is None:
            raise ApiError("message_not_in_streaming_state")
        return msg, msg.stream

    def _check_fits(self, stream: Stream, chunks: list[JSONDict], form: str | None) -> None:
        if self.stream_mode_lock and stream.mode == "markdown_text" and form == "chunks":
            raise ApiError("streaming_mode_mismatch")
        added = sum(len(c["text"]) for c in chunks if c["type"] == "markdown_text")
        if len(stream.markdown) + added > self.stream_text_limit:
            raise ApiError("msg_too_long")

    def _end_stream(self, msg: Message, state: StreamState) -> None:
        assert msg.stream is not None
        msg.stream.state = state
        msg.stream.ended_at = self.clock()
        self._live_streams.discard((msg.channel, msg.ts))
        self._on_message(msg)
        self._changed()

    def _refresh_streams(self) -> None:
        """End every live stream whose lifetime is over (checked lazily, and by a timer for watchers)."""
        now = self.clock()
        for key in list(self._live_streams):
            msg = self.messages[key]
            if msg.stream is not None and now - msg.stream.started_at >= self.stream_lifetime:
                self._end_stream(msg, "expired")

    def _refresh_statuses(self) -> None:
        now = self.clock()
        for (channel, thread_ts), shown in list(self._thread_statuses.items()):
            if now - shown.at >= self.status_timeout:
                del self._thread_statuses[(channel, thread_ts)]
                self._status_change(StatusChange(now, channel, thread_ts, "", None, "timeout"))

    def _status_change(self, change: StatusChange) -> None:
        self.statuses.append(change)
        self._on_status(change)
        self._changed()

    def _later(self, delay: float, check: Callable[[], None]) -> None:
        """Re-check at ``delay`` (real) seconds, so a watcher (the sandbox's page) sees an expiry without
        waiting for the next call. The checks compare ``clock()``, so a fake clock is still honoured."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        def fire() -> None:
            self._timers.discard(handle)
            check()

        handle = loop.call_later(max(delay, 0.0) + 0.01, fire)
        self._timers.add(handle)


def _content(args: JSONDict) -> tuple[list[JSONDict], str | None]:
    """The call's content as chunks (``markdown_text`` first, then ``chunks``) and its form:
    ``markdown_text``, ``chunks`` or None (nothing in it)."""
    out: list[JSONDict] = []
    form: str | None = None
    text = args.get("markdown_text")
    if text is not None:
        if not isinstance(text, str):
            raise invalid_arguments("markdown_text must be a string [json-pointer:/markdown_text]")
        if len(text) > MARKDOWN_TEXT_LIMIT:
            raise ApiError("msg_too_long")
        if text:
            out.append({"type": "markdown_text", "text": text})
            form = "markdown_text"
    chunks = args.get("chunks")
    if chunks is not None:
        if not isinstance(chunks, list):
            raise invalid_arguments("chunks must be an array [json-pointer:/chunks]")
        problems = [p for i, chunk in enumerate(chunks) for p in _chunk_problems(chunk, f"/chunks/{i}")]
        if problems:
            raise invalid_arguments(*problems)
        out += chunks
        if chunks:
            form = "chunks"
    return out, form


def _chunk_problems(chunk: Any, where: str) -> list[str]:
    if not isinstance(chunk, dict) or not isinstance(chunk.get("type"), str):
        return [f"must be an object with a type [json-pointer:{where}]"]
    kind = chunk["type"]
    if kind == "markdown_text":
        if not isinstance(chunk.get("text"), str):
            return [f"must provide text [json-pointer:{where}/text]"]
        if len(chunk["text"]) > MARKDOWN_TEXT_LIMIT:
            raise ApiError("msg_too_long")
        return []
    if kind == "task_update":
        problems = [
            f"must provide {name} [json-pointer:{where}/{name}]"
            for name in ("id", "title")
            if not isinstance(chunk.get(name), str) or not chunk[name]
        ]
        if chunk.get("status") not in TASK_STATUSES:
            problems.append(f"must be one of {', '.join(TASK_STATUSES)} [json-pointer:{where}/status]")
        for name in ("title", "details", "output"):
            value = chunk.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > CHUNK_FIELD_LIMIT):
                problems.append(
                    f"must be at most {CHUNK_FIELD_LIMIT} characters [json-pointer:{where}/{name}]"
                )
        if chunk.get("sources") is not None and not isinstance(chunk["sources"], list):
            problems.append(f"must be an array [json-pointer:{where}/sources]")
        return problems
    if kind == "plan_update":
        title = chunk.get("title")
        if not isinstance(title, str) or not title or len(title) > CHUNK_FIELD_LIMIT:
            return [f"must be 1 to {CHUNK_FIELD_LIMIT} characters [json-pointer:{where}/title]"]
        return []
    if kind == "blocks":
        validate_blocks(chunk.get("blocks"))
        return []
    return [f"unsupported chunk type {kind!r} [json-pointer:{where}/type]"]


def _apply(msg: Message, stream: Stream, chunks: list[JSONDict], form: str | None) -> None:
    """Add a call's chunks to the stream: text grows, cards update in place, the plan takes a title."""
    if stream.mode is None and form is not None:
        stream.mode = "markdown_text" if form == "markdown_text" else "chunks"
    for chunk in chunks:
        kind = chunk["type"]
        if kind == "markdown_text":
            stream.markdown += chunk["text"]
            last = stream.segments[-1] if stream.segments else None
            if last is not None and last[0] == "markdown":
                stream.segments[-1] = ("markdown", last[1] + chunk["text"])
            else:
                stream.segments.append(("markdown", chunk["text"]))
        elif kind == "task_update":
            card = stream.tasks.get(chunk["id"])
            if card is None:
                card = stream.tasks[chunk["id"]] = TaskCard(id=chunk["id"], title="", status="")
                stream.segments.append(("task", chunk["id"]))
            card.title, card.status = chunk["title"], chunk["status"]
            for name in ("details", "output"):
                if chunk.get(name) is not None:
                    setattr(card, name, (getattr(card, name) or "") + chunk[name])
            if chunk.get("sources") is not None:
                card.sources = chunk["sources"]
        elif kind == "plan_update":
            stream.plan_title = chunk["title"]
        elif kind == "blocks":
            stream.segments.append(("blocks", chunk["blocks"]))
    stream.chunks.extend(chunks)
    msg.text = stream.markdown
    msg.markdown_text = stream.markdown
