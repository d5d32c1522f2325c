"""Logging setup for the process (called by ``python -m bot``, never at import).

- ``LOG_FORMAT=json`` writes one JSON object per line (``time``, ``level``, ``logger``, ``message``,
  ``request_id`` when there is one, ``exc`` for a traceback); ``text`` (the default) is one readable line.
- The request id is carried in a context variable: ``Engine.submit`` and ``Engine.run`` bind it from
  ``request.id`` (``bound_request``), the worker binds it around each job's task (its heartbeat and
  hand-back lines), tasks started from there inherit it, and ``RequestIdFilter`` adds
  it to every record, so one grep follows a question from the event through the queue and the stream
  to the final edit.
- Nothing secret reaches the output, whoever logs it (our code, Bolt, slack_sdk at DEBUG): anything
  that looks like a Slack token or an API key, and the configured secrets themselves, are redacted.
- Message text is not logged unless ``LOG_MESSAGE_TEXT=true``: our code logs questions and answers
  only then, and the DEBUG records of the libraries that log request bodies (Slack payloads, model
  prompts) are dropped otherwise.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

_SECRET = re.compile(r"\b(xox[abposre]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-[A-Za-z0-9_-]{8,})")

# Libraries that log whole request or response bodies (message text, prompts) at DEBUG.
BODY_LOGGERS = (
    "slack_sdk",
    "slack_bolt",
    "threadline.bolt",
    "openai",
    "httpx",
    "httpcore",
    "aiohttp",
    "redis",
)
NOISY = ("slack_sdk", "slack_bolt", "httpx", "httpcore", "openai", "aiohttp.access")

request_id: ContextVar[str | None] = ContextVar("threadline_request_id", default=None)


@contextlib.contextmanager
def bound_request(rid: str | None) -> Iterator[None]:
    """Log records made inside (and in tasks started inside) carry ``rid`` as their request id."""
    token = request_id.set(rid)
    try:
        yield
    finally:
        request_id.reset(token)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _SECRET.sub(lambda m: m.group(0)[:5] + "…[redacted]", text)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (from the context, unless the call passed one in ``extra``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


class RedactingFilter(logging.Filter):
    """Redacts tokens and keys from the message; drops library DEBUG records that would carry
    message text unless ``message_text`` is allowed."""

    def __init__(self, secrets: Iterable[str] = (), *, message_text: bool = False) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)
        self.message_text = message_text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.message_text and record.levelno <= logging.DEBUG and record.name.startswith(BODY_LOGGERS):
            return False
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; exceptions are formatted into ``exc`` (redacted like the message)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            data["request_id"] = rid
        if record.exc_info:
            data["exc"] = redact(self.formatException(record.exc_info), self.secrets)
        elif record.exc_text:
            data["exc"] = redact(record.exc_text, self.secrets)
        return json.dumps(data, ensure_ascii=False)


# Characters that would end a text log line or rewrite it on a terminal: C0 and C1 controls (tab
# excepted), DEL, and Unicode's line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    r"""``text`` on one line: newlines as ``\n``, other control characters as ``\xNN``/``\uNNNN``."""
    return _CONTROL.sub(_escape, text) if _CONTROL.search(text) else text


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    named = {"\n": "\\n", "\r": "\\r"}
    if char in named:
        return named[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


class TextFormatter(logging.Formatter):
    """One readable line per record. The message is kept on its one line whatever it contains (a
    model's multi-line answer logged with ``LOG_MESSAGE_TEXT=true`` cannot forge log lines); a
    traceback follows on its own lines, as usual."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")
        self.secrets = list(secrets)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = logging.makeLogRecord(record.__dict__)  # a copy: other handlers see the record as is
        line.message = one_line(record.message)
        rid = getattr(record, "request_id", None)
        line.rid = f" [{one_line(str(rid))}]" if rid else ""
        return super().formatMessage(line)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def configure(
    level: str = "INFO",
    *,
    fmt: str = "text",
    message_text: bool = False,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) in ``fmt`` ("text" or "json"); returns the handler."""
    secrets = [s for s in secrets if s]
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(secrets) if fmt == "json" else TextFormatter(secrets))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactingFilter(secrets, message_text=message_text))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.NOTSET if level == "DEBUG" else logging.WARNING)
    return handler
