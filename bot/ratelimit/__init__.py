"""The workspace's edit budget: every ``chat.update`` of a workspace goes through it."""

from bot.ratelimit.base import EditBudget, Priority
from bot.ratelimit.memory import MemoryEditBudget

__all__ = ["EditBudget", "MemoryEditBudget", "Priority"]
