"""The unit of work: one question from Slack that deserves one answer.

A ``Request`` is plain data (JSON-serialisable through ``to_dict``/``from_dict``) so that a queue can
hold it in memory or in Redis alike.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from bot.files import FileRef


class Source(str, Enum):
    MENTION = "mention"
    DM = "dm"
    COMMAND = "command"
    SUMMARY = "summary"  # the "Summarize thread" message shortcut: the thread itself is the question
    FOLLOWUP = "followup"  # a reply without a mention in a channel thread the bot answered


class JobStatus(str, Enum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    FAILED = "failed"
    NOT_FOUND = "not_found"


def new_request_id() -> str:
    """A short id carried from the event to the final edit, shown to users on internal errors."""
    return secrets.token_hex(4)


@dataclass(frozen=True, kw_only=True)
class Request:
    """A question to answer.

    ``thread_ts`` is the root of the thread the answer goes into (for a mention or DM, the message's
    own ``ts`` when it is not in a thread yet). A command has no thread yet: its answer message becomes
    the root. A summary (the message shortcut) has no ``ts`` (it is no one's message: nothing to react
    to, nothing to deduplicate by) and no text (the thread is what is summarized). ``key`` identifies
    the Slack delivery for deduplication.
    """

    source: Source
    team_id: str
    channel: str
    user: str
    text: str
    ts: str | None = None
    thread_ts: str | None = None
    response_url: str | None = None
    has_files: bool = False
    files: tuple[FileRef, ...] = ()  # what Slack said about them; read by the worker (bot.attachments)
    event_id: str | None = None
    id: str = field(default_factory=new_request_id)

    @property
    def asks(self) -> bool:
        """Something to answer: text, or files sent with it (an image alone is a question too)."""
        return bool(self.text or self.files)

    @property
    def queue_key(self) -> str:
        """Requests with the same queue key are answered one at a time, in order."""
        return f"{self.team_id}:{self.channel}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["source"] = self.source.value
        data["files"] = [f.to_dict() for f in self.files]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Request:
        files = tuple(FileRef.from_dict(f) for f in data.get("files") or () if isinstance(f, dict))
        return cls(**{**data, "source": Source(data["source"]), "files": files})


@dataclass(kw_only=True)
class Job:
    """A request accepted for answering: where its answer goes, and how often it was tried.

    ``placeholder_ts`` is the message that shows the answer. ``via_response_url`` is set for a command
    whose channel the bot cannot post in: the answer then goes through the command's response_url.
    """

    request: Request
    placeholder_ts: str | None = None
    via_response_url: bool = False
    tries: int = 0
    status: JobStatus = JobStatus.QUEUED
    enqueued_at: float = 0.0  # wall clock (time.time()), set by the queue
    worker: str | None = None  # the worker holding the lease while in progress
    # What the placeholder said when it was posted ("Queued: …" or the thinking text), so whichever
    # replica answers knows a queue notice may be showing.
    posted_text: str | None = None

    @property
    def id(self) -> str:
        return self.request.id

    @property
    def thread_key(self) -> str:
        """Jobs with the same thread key are answered one at a time, in order."""
        root = self.request.thread_ts or self.placeholder_ts or self.request.id
        return f"{self.request.queue_key}:{root}"

    @property
    def resumed(self) -> bool:
        """True when an earlier worker started this job and did not finish it."""
        return self.tries > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request.to_dict(),
            "placeholder_ts": self.placeholder_ts,
            "via_response_url": self.via_response_url,
            "tries": self.tries,
            "status": self.status.value,
            "enqueued_at": self.enqueued_at,
            "worker": self.worker,
            "posted_text": self.posted_text,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(
            request=Request.from_dict(data["request"]),
            placeholder_ts=data.get("placeholder_ts"),
            via_response_url=bool(data.get("via_response_url")),
            tries=int(data.get("tries", 0)),
            status=JobStatus(data.get("status", JobStatus.QUEUED.value)),
            enqueued_at=float(data.get("enqueued_at", 0.0)),
            worker=data.get("worker"),
            posted_text=data.get("posted_text"),
        )
