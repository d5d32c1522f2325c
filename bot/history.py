"""A thread's conversation: read from the conversation store, or once from Slack
(``conversations.replies``) for a thread the store has never seen, and kept there afterwards."""

from __future__ import annotations

import logging
from typing import Any

from bot.context import Turn
from bot.errors import SlackError
from bot.files import shared_files_text
from bot.gateway import SlackGateway
from bot.jobs import Job, Source
from bot.payloads import is_from_bot, mentions_bot, strip_bot_mention
from bot.store.base import ConversationStore, StoreUnavailable

logger = logging.getLogger(__name__)


def thread_root(job: Job) -> str | None:
    """The thread the answer belongs to (a command's answer roots its own)."""
    if job.request.source is Source.COMMAND:
        return job.placeholder_ts
    return job.request.thread_ts


class History:
    def __init__(self, *, store: ConversationStore, gateway: SlackGateway, bot_user_id: str | None) -> None:
        self.store = store
        self.gateway = gateway
        self.bot_user_id = bot_user_id

    async def turns(self, job: Job) -> list[Turn]:
        request = job.request
        root = thread_root(job)
        if root is None:
            return []
        try:
            turns = await self.store.get_turns(
                team_id=request.team_id, channel=request.channel, thread_ts=root
            )
        except StoreUnavailable:
            logger.warning("conversation store unavailable; reading the thread from Slack")
            turns = None
        if turns is not None:
            return turns
        if request.ts is None or request.ts == root:
            return []  # a new thread: nothing earlier to read
        try:
            messages = await self.gateway.thread_messages(
                channel=request.channel, thread_ts=root, team_id=request.team_id
            )
        except SlackError as err:
            logger.warning("could not read thread %s: %s", root, err.error)
            return []
        turns = self.turns_from_messages(messages, before=request.ts, skip={job.placeholder_ts})
        if turns:
            # From now on the store knows this thread: keep what was read, or the next follow-up
            # would see only the turns added after it.
            try:
                await self.store.append_turns(
                    team_id=request.team_id, channel=request.channel, thread_ts=root, turns=turns
                )
            except StoreUnavailable:
                logger.warning("could not keep the thread read from Slack (request %s)", request.id)
        return turns

    def turns_from_messages(
        self, messages: list[dict[str, Any]], *, before: str, skip: set[str | None]
    ) -> list[Turn]:
        turns: list[Turn] = []
        for message in messages:
            ts = str(message.get("ts", ""))
            if ts in skip or float(ts or 0) >= float(before):
                continue
            turn = self._turn(message, ts)
            if turn is not None:
                turns.append(turn)
        return turns

    def _turn(self, message: dict[str, Any], ts: str) -> Turn | None:
        """The bot's own message is an answer; a person's that mentions the bot, a question to it;
        anything else (a person talking to others, another bot) is quoted context, attributed."""
        text = "\n\n".join(t for t in (str(message.get("text") or ""), shared_files_text(message)) if t)
        user = str(message.get("user") or "")
        if self.bot_user_id is not None and user == self.bot_user_id:
            return Turn(role="assistant", text=text, ts=ts)
        if is_from_bot(message, None):
            author = user or str(message.get("bot_id") or "")
            return Turn(role="user", text=text, user=author or None, ts=ts, quoted=True) if text else None
        if not user:
            return None
        asked = mentions_bot(text, self.bot_user_id)
        text = strip_bot_mention(text, self.bot_user_id)
        return Turn(role="user", text=text, user=user, ts=ts, quoted=not asked)

    async def remember(self, job: Job, question: Turn, answer: str) -> None:
        """Append the question and its answer to the thread's conversation."""
        root = thread_root(job)
        if root is None:
            return
        turns = [question]
        if answer:
            turns.append(Turn(role="assistant", text=answer))
        request = job.request
        try:
            await self.store.append_turns(
                team_id=request.team_id, channel=request.channel, thread_ts=root, turns=turns
            )
        except Exception:
            logger.exception("could not store the conversation (request %s)", request.id)
