"""Conversation store and delivery dedup: a protocol, an in-memory and (later) a Redis version."""

from bot.store.base import ConversationStore, Deduplicator
from bot.store.memory import MemoryConversationStore, MemoryDeduplicator

__all__ = ["ConversationStore", "Deduplicator", "MemoryConversationStore", "MemoryDeduplicator"]
