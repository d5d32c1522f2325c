"""The per-channel queue: a protocol, an in-memory version and a Redis one for replicas."""

from bot.queue.base import JobQueue, QueueAtCapacity, QueueFull, QueueUnavailable
from bot.queue.memory import MemoryQueue

__all__ = ["JobQueue", "MemoryQueue", "QueueAtCapacity", "QueueFull", "QueueUnavailable"]
