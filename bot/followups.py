"""Which channel threads the bot follows: replies there are answered without a mention.

A thread is followed when the bot answered in it, and that is known without asking Slack (no
``conversations.replies`` per channel message: channels can be busy, and the check runs before the
ack). Two records say so, both shared by replicas (memory or Redis, like the rest of the state):

- the conversation store holds the thread's turns (``ConversationStore.get_turns`` is not ``None``):
  written when an answer finishes (``History.remember``), or when a mention in an older thread read
  it from Slack; it lives for ``BOT_CONVERSATION_TTL_SECONDS``, so a thread is followed that long
  after its last answer;
- a claim ``thread:{team}:{channel}:{thread}`` set when a question of that thread is queued (for
  ``BOT_DEDUP_TTL_SECONDS``), so a reply that comes while the first answer is still being written is
  answered too (after it: one answer at a time per thread). A ``/ask`` answer roots its own thread:
  the runner sets the claim once that message is posted.

When the store cannot be read, a reply is not answered (a mention still is).
"""

from __future__ import annotations

import logging

from bot.jobs import Request, Source
from bot.settings import Settings
from bot.store.base import ConversationStore, Deduplicator, StoreUnavailable

logger = logging.getLogger(__name__)

_MARK = "1"


class ThreadFollowups:
    def __init__(self, *, settings: Settings, store: ConversationStore, claims: Deduplicator) -> None:
        self.settings = settings
        self.store = store
        self.claims = claims

    async def queued(self, request: Request) -> None:
        """A mention in a channel thread was queued: the bot answers in that thread from now on. (A
        follow-up's thread is marked already: that is how it was followed.)"""
        if request.source is Source.MENTION and request.thread_ts is not None:
            await self.answering(request, request.thread_ts)

    async def answering(self, request: Request, thread_ts: str) -> None:
        """The bot answers ``request`` in the thread ``thread_ts`` (a ``/ask`` answer's own, once
        posted): replies there are follow-ups."""
        key = f"thread:{request.team_id}:{request.channel}:{thread_ts}"
        try:
            await self.claims.claim(key=key, value=_MARK)
        except StoreUnavailable:
            logger.warning("could not mark thread %s as answered (request %s)", thread_ts, request.id)

    async def followed(self, request: Request) -> bool:
        """True when ``request`` is a reply in a thread the bot answered (and follow-ups are on)."""
        if not self.settings.thread_followups or request.thread_ts is None or request.thread_ts == request.ts:
            return False
        key = f"thread:{request.team_id}:{request.channel}:{request.thread_ts}"
        try:
            if await self.claims.claim(key=key, value="") == _MARK:
                return True
            # Before the ack, for every reply: whether the store knows the thread, not its turns.
            known = await self.store.has_turns(
                team_id=request.team_id, channel=request.channel, thread_ts=request.thread_ts
            )
        except StoreUnavailable:
            logger.warning("conversation store unavailable: reply %s in a thread not answered", request.ts)
            return False
        return known
