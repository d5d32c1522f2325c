"""Logging setup for the process (called by ``python -m bot``, never at import).

A filter on the handler redacts anything that looks like a Slack token or an API key, so a token can
never reach the logs, whoever logs it (our code, Bolt, slack_sdk at DEBUG).
"""

from __future__ import annotations

import logging
import re
import sys

_SECRET = re.compile(r"\b(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-[A-Za-z0-9_-]{8,})")


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: m.group(0)[:5] + "…[redacted]", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if level != "DEBUG":
        for noisy in ("slack_sdk", "slack_bolt", "httpx", "openai", "aiohttp.access"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
