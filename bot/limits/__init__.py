"""Per-user rate limits, daily token budgets and the answer → request map used for feedback."""

from bot.limits.base import LimitStore
from bot.limits.memory import MemoryLimitStore
from bot.limits.policy import Rate, parse_rate

__all__ = ["LimitStore", "MemoryLimitStore", "Rate", "parse_rate"]
