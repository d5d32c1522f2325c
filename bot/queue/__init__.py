"""The per-channel queue: a protocol, an in-memory version (and a Redis one for replicas)."""

from bot.queue.base import JobHandler, JobQueue
from bot.queue.memory import MemoryQueue

__all__ = ["JobHandler", "JobQueue", "MemoryQueue"]
