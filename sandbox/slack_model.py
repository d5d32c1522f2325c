"""What the fake Slack (``sandbox/slack.py``) keeps: messages and their edits, the Web API calls it served,
native streams and their task cards, thread statuses, and the error a method answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

JSONDict = dict[str, Any]

StreamState = Literal["in_progress", "completed", "expired", "stopped_by_user"]
StatusSource = Literal["api", "reply", "timeout"]


@dataclass
class Edit:
    """One accepted ``chat.update``: the message's text and blocks after it, and its ``parse``."""

    at: float
    text: str
    blocks: list[Any] | None
    parse: str | None = None
    args: JSONDict = field(default_factory=dict)
    ts: str = ""  # wall-clock time of the edit, as a Slack ts ("edited.ts")


@dataclass
class TaskCard:
    """A progress card of a native stream, as its ``task_update`` chunks left it: a later chunk with the
    same ``id`` replaces the title and the status and adds to the details and the output."""

    id: str
    title: str
    status: str
    details: str | None = None
    output: str | None = None
    sources: list[Any] | None = None

    def to_json(self) -> JSONDict:
        out: JSONDict = {"id": self.id, "title": self.title, "status": self.status}
        for name in ("details", "output", "sources"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


@dataclass
class Stream:
    """A message that began with ``chat.startStream``.

    ``markdown`` is every Markdown text appended, in order; ``segments`` is what the message shows in
    order: ``("markdown", text)``, ``("task", id)`` where a card first appeared, ``("blocks", blocks)``.
    ``state`` is ``in_progress`` until ``chat.stopStream`` (``completed``), the stream's lifetime
    (``expired``) or the person's Stop (``stopped_by_user``). ``replaced`` is set by a ``chat.update``:
    from then on the message shows what that update sent instead of the streamed content.
    """

    started_at: float
    recipient_user_id: str | None = None
    recipient_team_id: str | None = None
    task_display_mode: str | None = None
    state: StreamState = "in_progress"
    mode: Literal["markdown_text", "chunks"] | None = None  # fixed by the first call that carries content
    markdown: str = ""
    segments: list[tuple[str, Any]] = field(default_factory=list)
    tasks: dict[str, TaskCard] = field(default_factory=dict)
    plan_title: str | None = None
    chunks: list[JSONDict] = field(default_factory=list)  # every chunk received (markdown_text args too)
    calls: int = 1  # accepted start/append/stop calls
    ended_at: float | None = None
    final_blocks: list[Any] | None = None
    metadata: JSONDict | None = None
    replaced: bool = False

    @property
    def live(self) -> bool:
        return self.state == "in_progress"

    def to_json(self) -> JSONDict:
        return {
            "state": self.state,
            "markdown": self.markdown,
            "segments": [{"kind": kind, "value": value} for kind, value in self.segments],
            "tasks": {key: card.to_json() for key, card in self.tasks.items()},
            "plan_title": self.plan_title,
            "task_display_mode": self.task_display_mode,
            "replaced": self.replaced,
        }


@dataclass
class Message:
    channel: str
    ts: str
    thread_ts: str | None
    user: str
    text: str
    blocks: list[Any] | None = None
    bot_id: str | None = None
    edits: list[Edit] = field(default_factory=list)
    reactions: dict[str, set[str]] = field(default_factory=dict)  # name -> users who reacted
    deleted: bool = False
    ephemeral_user: str | None = None
    # The posting call's arguments:
    unfurl_links: bool | None = None
    unfurl_media: bool | None = None
    parse: str | None = None
    markdown_text: str | None = None
    attachments: list[Any] | None = None
    args: JSONDict = field(default_factory=dict)  # everything the posting call sent (token removed)
    posted_at: float = 0.0
    stream: Stream | None = None  # set on a message that began with chat.startStream
    files: list[JSONDict] | None = None  # shared files (their objects, as events carry them)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def streaming(self) -> bool:
        """Still a live native stream (appends accepted)."""
        return self.stream is not None and self.stream.live

    def to_api(self, *, reply_count: int | None = None, parent_user_id: str | None = None) -> JSONDict:
        """The message as ``conversations.replies`` / ``chat.postMessage`` return it."""
        out: JSONDict = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts}
        if self.bot_id is not None:
            out["bot_id"] = self.bot_id
        if self.blocks:
            out["blocks"] = self.blocks
        if self.attachments:
            out["attachments"] = self.attachments
        if self.files:
            out["files"] = self.files
            out["upload"] = True
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        elif reply_count:
            out["thread_ts"] = self.ts
        if reply_count:
            out["reply_count"] = reply_count
        if self.is_reply and parent_user_id is not None:
            out["parent_user_id"] = parent_user_id
        if self.edits:
            out["edited"] = {"user": self.user, "ts": self.edits[-1].ts}
        if self.reactions:
            out["reactions"] = [
                {"name": name, "users": sorted(users), "count": len(users)}
                for name, users in self.reactions.items()
                if users
            ]
        if self.stream is not None:  # as Slack reads a streamed message back
            out["streaming_state"] = "in_progress" if self.stream.live else "completed"
        return out


@dataclass
class StatusChange:
    """A thread status shown (``status``) or cleared (``""``): by ``assistant.threads.setStatus``
    (source ``api``), by the app's reply in the thread (``reply``) or by Slack's timeout (``timeout``)."""

    at: float
    channel: str
    thread_ts: str
    status: str
    loading_messages: list[str] | None = None
    source: StatusSource = "api"


@dataclass
class Call:
    """One Web API call as the fake saw it. ``args`` merges query string, form and JSON body."""

    method: str
    args: JSONDict
    at: float
    status: int
    response: JSONDict
    http_method: str = "POST"
    content_type: str = ""  # the Content-Type header as sent ("" if none)
    token: str | None = None
    body_size: int = 0  # Content-Length of the request body (0: arguments, if any, were in the query string)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass
class Failure:
    status: int
    error: str
    retry_after: float
    times: int
    apply: bool


class ApiError(Exception):
    """A method's refusal: ``{"ok": false, "error": error, **extra}`` with HTTP ``status``."""

    def __init__(
        self, error: str, status: int = 200, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.extra = extra


def invalid_arguments(*problems: str) -> ApiError:
    """Slack's answer to arguments of the wrong shape, with its ``[ERROR] …`` messages."""
    return ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})


def ts_key(ts: str) -> tuple[int, int]:
    whole, _, frac = ts.partition(".")
    return int(whole), int((frac + "000000")[:6])


def as_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def seconds_header(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds as Slack sends them ("7"), a fraction as given ("0.25")."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")
