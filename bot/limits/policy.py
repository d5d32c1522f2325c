"""Pure rules of the limits: parsing ``BOT_USER_RATE``, the keys of each counter, and what a person
is told when a limit stops their question (always with when they can ask again)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour", "d": "day"}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")

# A day's token counters live a little longer than the day (UTC), then expire.
USAGE_TTL_SECONDS = 2 * 86400.0


@dataclass(frozen=True)
class Rate:
    """``count`` questions per ``seconds``; ``text`` is how a person reads it ("10 minutes")."""

    count: int
    seconds: float
    window_text: str

    def describe(self) -> str:
        noun = "question" if self.count == 1 else "questions"
        return f"{self.count} {noun} per {self.window_text}"


def parse_rate(raw: str) -> Rate:
    """``"20/10m"`` → 20 per 600 s. Units: s, m, h, d; the number before the unit defaults to 1
    (``"100/d"``). Raises ``ValueError`` for anything else."""
    match = _RATE.match(raw)
    if match is None:
        raise ValueError(raw)
    count, amount_raw, unit = int(match.group(1)), match.group(2), match.group(3)
    amount = int(amount_raw) if amount_raw else 1
    if count < 1 or amount < 1:
        raise ValueError(raw)
    name = _UNIT_NAMES[unit]
    window_text = name if amount == 1 else f"{amount} {name}s"
    return Rate(count=count, seconds=float(amount * _UNITS[unit]), window_text=window_text)


def wait_text(seconds: float) -> str:
    """ "in 4 minutes": a wait rounded up, in the largest unit that reads naturally."""
    seconds = max(1.0, seconds)
    if seconds < 60:
        n, unit = math.ceil(seconds), "second"
    elif seconds < 90 * 60:
        n, unit = math.ceil(seconds / 60), "minute"
    elif seconds < 48 * 3600:
        n, unit = math.ceil(seconds / 3600), "hour"
    else:
        n, unit = math.ceil(seconds / 86400), "day"
    return f"in {n} {unit}{'' if n == 1 else 's'}"


def rate_key(team_id: str, user: str) -> str:
    return f"rate:{team_id}:{user}"


def vote_key(team_id: str, request_id: str, user: str, vote: str) -> str:
    """One user's 👍 (``up``) or 👎 (``down``) on the answer to ``request_id``."""
    return f"feedback:{team_id}:{request_id}:{user}:{vote}"


def day_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%d")


def seconds_until_tomorrow(now: datetime) -> float:
    """Seconds until the next midnight UTC, when the daily budgets start over."""
    now = now.astimezone(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


def workspace_usage_key(day: str, team_id: str) -> str:
    return f"tokens:{day}:{team_id}"


def user_usage_key(day: str, team_id: str, user: str) -> str:
    return f"tokens:{day}:{team_id}:{user}"


def rate_refusal(rate: Rate, retry_after: float) -> str:
    return f"You've reached the limit of {rate.describe()}; you can ask again {wait_text(retry_after)}."


def budget_refusal(*, workspace: bool, limit: int, now: datetime) -> str:
    when = wait_text(seconds_until_tomorrow(now))
    if workspace:
        return (
            f"This workspace has used its daily allowance of {limit:,} tokens; "
            f"you can ask again {when} (at midnight UTC)."
        )
    return (
        f"You've used your daily allowance of {limit:,} tokens; you can ask again {when} (at midnight UTC)."
    )


CHANNEL_REFUSAL = (
    "Sorry, I'm not set up to answer in this conversation. Please ask me in a channel where I'm enabled."
)
USER_REFUSAL = "Sorry, I can only answer people my admins have enabled. Please ask them for access."
