"""Configuration from environment variables (and a ``.env`` file), validated once at start.

Every variable is listed in ``.env.example``. A missing or malformed value raises ``ConfigError``
naming the variable and the fix; ``python -m bot`` prints that one line and exits with status 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from bot.constants import DEFAULT_EDITS_PER_MINUTE, SLACK_API_URL
from bot.errors import ConfigError
from bot.limits.policy import Rate, parse_rate

DEFAULT_SYSTEM_PROMPT = (
    "You are Threadline, a helpful assistant in a Slack workspace. Answer clearly and concisely. "
    "Use Markdown for structure when it helps. Messages from people start with their Slack user id."
)


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=value`` lines, ``#`` comments, optional quotes and ``export``."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def environment(dotenv: Path | None = Path(".env")) -> dict[str, str]:
    """The process environment over the values of a ``.env`` file (the environment wins)."""
    merged = read_dotenv(dotenv) if dotenv is not None else {}
    merged.update(os.environ)
    return merged


class _Reader:
    """Reads typed values out of a mapping, raising ``ConfigError`` that names the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "").strip()
        return value if value else default

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, f"must be a number of seconds, got {raw!r}") from None
        if not value > minimum:
            raise ConfigError(name, f"must be greater than {minimum:g}, got {raw!r}")
        return value

    def integer(self, name: str, default: int, *, minimum: int = 1) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(name, f"must be at least {minimum}, got {raw!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(name, f"must be true or false, got {raw!r}")

    def emoji(self, name: str, default: str) -> str:
        raw = (self.text(name, default) or default).strip(":")
        if not re.fullmatch(r"[a-z0-9_+'-]+", raw):
            raise ConfigError(name, f"must be an emoji name like {default!r} (no colons needed), got {raw!r}")
        return raw

    def url(self, name: str, default: str | None, *, schemes: tuple[str, ...]) -> str | None:
        raw = self.text(name, default)
        if raw is None:
            return None
        parsed = urlparse(raw)
        if parsed.scheme not in schemes or not (parsed.netloc or parsed.scheme == "unix"):
            wanted = " or ".join(f"{s}://" for s in schemes)
            raise ConfigError(name, f"must be a URL starting with {wanted}, got {raw!r}")
        return raw

    def token(self, name: str, prefix: str, where: str) -> str:
        value = self.text(name)
        if value is None:
            raise ConfigError(name, f"is missing: set it to the {prefix}… token from {where}")
        if not value.startswith(prefix):
            raise ConfigError(name, f"must start with {prefix!r}: copy the token from {where}")
        return value

    def rate(self, name: str) -> Rate | None:
        raw = self.text(name)
        if raw is None:
            return None
        try:
            return parse_rate(raw)
        except ValueError:
            raise ConfigError(
                name, f"must look like 20/10m (questions per window; units s, m, h, d), got {raw!r}"
            ) from None

    def optional_integer(self, name: str) -> int | None:
        return self.integer(name, 0) if self.text(name) is not None else None

    def ids(
        self, name: str, pattern: str, example: str, *, extra: frozenset[str] = frozenset()
    ) -> frozenset[str]:
        raw = self.text(name)
        if raw is None:
            return frozenset()
        items = [item.strip() for item in raw.split(",") if item.strip()]
        for item in items:
            if item not in extra and not re.fullmatch(pattern, item):
                raise ConfigError(name, f"must be comma-separated ids like {example}, got {item!r}")
        return frozenset(items)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = (self.text(name, default) or default).lower()
        if raw not in choices:
            raise ConfigError(name, f"must be {' or '.join(choices)}, got {raw!r}")
        return raw


STREAM_TEXT_LIMIT = 12_000  # Markdown characters Slack keeps in one streamed message


def _rollover_chars(r: _Reader) -> int:
    value = r.integer("BOT_STREAM_ROLLOVER_CHARS", 11_000, minimum=500)
    if value > STREAM_TEXT_LIMIT - 500:
        raise ConfigError(
            "BOT_STREAM_ROLLOVER_CHARS",
            f"must be at most {STREAM_TEXT_LIMIT - 500} (a streamed message holds about "
            f"{STREAM_TEXT_LIMIT:,} characters, and a note may follow), got {value}",
        )
    return value


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the bot reads from its environment. Build it with ``Settings.from_env``."""

    slack_bot_token: str = field(repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = SLACK_API_URL
    openai_api_key: str = field(default="", repr=False)
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    timeout_seconds: float = 120.0
    first_token_timeout_seconds: float = 30.0
    idle_timeout_seconds: float = 30.0
    max_attempts: int = 3
    retry_base_seconds: float = 1.0
    final_edit_deadline_seconds: float = 120.0
    edit_interval_seconds: float = 1.0
    edits_per_minute: int = DEFAULT_EDITS_PER_MINUTE
    edit_window_seconds: float = 60.0
    posts_per_channel_per_second: float = 1.0
    posts_per_channel_burst: int = 3
    reactions_per_minute: int = 40
    context_tokens: int = 8000
    max_answer_tokens: int | None = None
    conversation_ttl_seconds: float = 7 * 24 * 3600.0
    dedup_ttl_seconds: float = 3600.0
    max_concurrency: int = 64
    channel_concurrency: int = 1
    max_queue_per_channel: int = 20
    max_queued_total: int = 1000
    lease_seconds: float = 30.0
    shutdown_grace_seconds: float = 20.0
    status_reactions: bool = True
    reaction_working: str = "eyes"
    reaction_done: str = "white_check_mark"
    reaction_failed: str = "warning"
    redis_url: str | None = None
    port: int = 3000
    log_level: str = "INFO"
    log_format: str = "text"
    log_message_text: bool = False
    user_rate: Rate | None = None
    daily_tokens_workspace: int | None = None
    daily_tokens_user: int | None = None
    allowed_channels: frozenset[str] = frozenset()  # empty: every channel; "dm": direct messages
    allowed_users: frozenset[str] = frozenset()  # empty: everyone
    socket_watchdog_seconds: float = 120.0
    # Native streams (chat.startStream/appendStream/stopStream) beside edits: "auto" streams natively
    # while the workspace's start and stop budgets have room, "native" whenever Slack allows it,
    # "edit" never (today's behaviour).
    transport: str = "auto"
    stream_starts_per_minute: int = 18  # Slack: Tier 2 (20 a minute), with a margin
    stream_stops_per_minute: int = 18
    stream_appends_per_minute: int = 90  # Slack: Tier 4 (100+ a minute)
    stream_append_interval_seconds: float = 1.0  # per stream, at least this long between appends
    stream_rollover_chars: int = 11_000  # a streamed message holds about 12,000 characters
    stream_rollover_seconds: float = 240.0  # Slack ends a stream about 5 minutes after its start

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings; raises ``ConfigError`` on the first bad variable."""
        r = _Reader(environment() if env is None else env)
        slack_app_token = None
        if r.text("SLACK_APP_TOKEN") is not None:
            slack_app_token = r.token(
                "SLACK_APP_TOKEN", "xapp-", "your Slack app's Basic Information > App-Level Tokens"
            )
        signing_secret = r.text("SLACK_SIGNING_SECRET")
        if slack_app_token is None and signing_secret is None:
            raise ConfigError(
                "SLACK_SIGNING_SECRET",
                "is missing: set it from your Slack app's Basic Information > App Credentials "
                "(HTTP mode), or set SLACK_APP_TOKEN to use Socket Mode",
            )
        openai_base_url = r.url("OPENAI_BASE_URL", None, schemes=("http", "https"))
        openai_api_key = r.text("OPENAI_API_KEY")
        if openai_api_key is None:
            if openai_base_url is None:
                raise ConfigError(
                    "OPENAI_API_KEY",
                    "is missing: set it to your OpenAI API key, or set OPENAI_BASE_URL to an "
                    "OpenAI-compatible server that needs no key",
                )
            openai_api_key = "not-needed"
        slack_api_url = r.url("SLACK_API_URL", SLACK_API_URL, schemes=("http", "https"))
        assert slack_api_url is not None
        if not slack_api_url.endswith("/"):
            slack_api_url += "/"
        log_level = (r.text("LOG_LEVEL", "INFO") or "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError("LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
        max_tokens_raw = r.text("BOT_MAX_ANSWER_TOKENS")
        return cls(
            slack_bot_token=r.token("SLACK_BOT_TOKEN", "xoxb-", "your Slack app's OAuth & Permissions page"),
            slack_signing_secret=signing_secret,
            slack_app_token=slack_app_token,
            slack_api_url=slack_api_url,
            openai_api_key=openai_api_key,
            openai_base_url=openai_base_url,
            openai_model=r.text("OPENAI_MODEL", "gpt-4o-mini") or "gpt-4o-mini",
            system_prompt=r.text("BOT_SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT) or DEFAULT_SYSTEM_PROMPT,
            timeout_seconds=r.number("BOT_TIMEOUT_SECONDS", 120.0),
            first_token_timeout_seconds=r.number("BOT_FIRST_TOKEN_TIMEOUT_SECONDS", 30.0),
            idle_timeout_seconds=r.number("BOT_IDLE_TIMEOUT_SECONDS", 30.0),
            max_attempts=r.integer("BOT_MAX_ATTEMPTS", 3),
            retry_base_seconds=r.number("BOT_RETRY_BASE_SECONDS", 1.0),
            final_edit_deadline_seconds=r.number("BOT_FINAL_EDIT_DEADLINE_SECONDS", 120.0),
            edit_interval_seconds=r.number("BOT_EDIT_INTERVAL_SECONDS", 1.0),
            edits_per_minute=r.integer("BOT_EDITS_PER_MINUTE", DEFAULT_EDITS_PER_MINUTE, minimum=2),
            edit_window_seconds=r.number("BOT_EDIT_WINDOW_SECONDS", 60.0),
            posts_per_channel_per_second=r.number("BOT_POSTS_PER_CHANNEL_PER_SECOND", 1.0),
            posts_per_channel_burst=r.integer("BOT_POSTS_PER_CHANNEL_BURST", 3),
            reactions_per_minute=r.integer("BOT_REACTIONS_PER_MINUTE", 40, minimum=1),
            context_tokens=r.integer("BOT_CONTEXT_TOKENS", 8000, minimum=100),
            max_answer_tokens=(r.integer("BOT_MAX_ANSWER_TOKENS", 1) if max_tokens_raw is not None else None),
            conversation_ttl_seconds=r.number("BOT_CONVERSATION_TTL_SECONDS", 7 * 24 * 3600.0),
            dedup_ttl_seconds=r.number("BOT_DEDUP_TTL_SECONDS", 3600.0),
            max_concurrency=r.integer("BOT_MAX_CONCURRENCY", 64),
            channel_concurrency=r.integer("BOT_CHANNEL_CONCURRENCY", 1),
            max_queue_per_channel=r.integer("BOT_MAX_QUEUE_PER_CHANNEL", 20),
            max_queued_total=r.integer("BOT_MAX_QUEUED_TOTAL", 1000),
            lease_seconds=r.number("BOT_LEASE_SECONDS", 30.0),
            shutdown_grace_seconds=r.number("BOT_SHUTDOWN_GRACE_SECONDS", 20.0),
            status_reactions=r.flag("BOT_STATUS_REACTIONS", True),
            reaction_working=r.emoji("BOT_REACTION_WORKING", "eyes"),
            reaction_done=r.emoji("BOT_REACTION_DONE", "white_check_mark"),
            reaction_failed=r.emoji("BOT_REACTION_FAILED", "warning"),
            redis_url=r.url("REDIS_URL", None, schemes=("redis", "rediss", "unix")),
            port=r.integer("PORT", 3000, minimum=0),
            log_level=log_level,
            log_format=r.choice("LOG_FORMAT", "text", ("text", "json")),
            log_message_text=r.flag("LOG_MESSAGE_TEXT", False),
            user_rate=r.rate("BOT_USER_RATE"),
            daily_tokens_workspace=r.optional_integer("BOT_DAILY_TOKENS_WORKSPACE"),
            daily_tokens_user=r.optional_integer("BOT_DAILY_TOKENS_USER"),
            allowed_channels=r.ids(
                "BOT_ALLOWED_CHANNELS",
                r"[CGD][A-Z0-9_]+",
                "C0123ABCD,G0456EFGH (or dm)",
                extra=frozenset({"dm"}),
            ),
            allowed_users=r.ids("BOT_ALLOWED_USERS", r"[UW][A-Z0-9_]+", "U0123ABCD,W0456EFGH"),
            socket_watchdog_seconds=r.number("BOT_SOCKET_WATCHDOG_SECONDS", 120.0),
            transport=r.choice("BOT_TRANSPORT", "auto", ("auto", "native", "edit")),
            stream_starts_per_minute=r.integer("BOT_STREAM_STARTS_PER_MINUTE", 18),
            stream_stops_per_minute=r.integer("BOT_STREAM_STOPS_PER_MINUTE", 18),
            stream_appends_per_minute=r.integer("BOT_STREAM_APPENDS_PER_MINUTE", 90),
            stream_append_interval_seconds=r.number("BOT_STREAM_APPEND_INTERVAL_SECONDS", 1.0),
            stream_rollover_chars=_rollover_chars(r),
            stream_rollover_seconds=r.number("BOT_STREAM_ROLLOVER_SECONDS", 240.0),
        )
