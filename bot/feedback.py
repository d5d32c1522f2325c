"""Feedback on answers: 👍/👎 reactions and Slack's feedback buttons are votes, one per user, kind
and answer, withdrawn when taken back. The answer's messages are mapped to its request so a vote on
any of them can be attributed."""

from __future__ import annotations

import logging

from bot import logs
from bot.jobs import Request
from bot.limits import policy
from bot.limits.base import LimitStore
from bot.metrics import Metrics
from bot.settings import Settings
from bot.store.base import StoreUnavailable

logger = logging.getLogger(__name__)

FEEDBACK_VOTES = {"+1": "up", "thumbsup": "up", "-1": "down", "thumbsdown": "down"}


class Feedback:
    def __init__(
        self, *, settings: Settings, limits: LimitStore, metrics: Metrics, bot_user_id: str | None
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.metrics = metrics
        self.bot_user_id = bot_user_id

    async def remember_answer(self, request: Request, ts_list: list[str]) -> None:
        """Map the answer's messages to the request, so a reaction on them can be attributed."""
        try:
            for ts in ts_list:
                await self.limits.remember_answer(
                    team_id=request.team_id,
                    channel=request.channel,
                    ts=ts,
                    request_id=request.id,
                    ttl=self.settings.conversation_ttl_seconds,
                )
        except StoreUnavailable:
            logger.warning("could not remember the answer of request %s for feedback", request.id)

    async def reaction(
        self, *, team_id: str, channel: str, ts: str, user: str, reaction: str, removed: bool = False
    ) -> None:
        """A reaction was added to a message (or taken off it, ``removed``): 👍/👎 on one of our answers
        is a vote. A user's vote of one kind on one answer counts once, however many reactions cast it
        (again after a removal, redelivered, other skin tones, several messages of one answer), and is
        withdrawn when its last reaction is removed; both are kept in the limits store for as long as
        the answer is remembered."""
        vote = FEEDBACK_VOTES.get(reaction.split("::", 1)[0])
        if vote is None or user == self.bot_user_id:
            return
        await self.vote(
            team_id=team_id,
            channel=channel,
            ts=ts,
            user=user,
            vote=vote,
            member=f"{ts}:{reaction}",
            removed=removed,
        )

    async def button(self, *, team_id: str, channel: str, ts: str, user: str, vote: str) -> None:
        """A click on Slack's feedback buttons under a native answer (``vote`` "up"/"down"): one vote
        per user and answer; a click on the other side takes the first one back."""
        if vote not in ("up", "down") or user == self.bot_user_id:
            return
        member = f"{ts}:feedback_buttons"
        other = "down" if vote == "up" else "up"
        await self.vote(
            team_id=team_id, channel=channel, ts=ts, user=user, vote=other, member=member, removed=True
        )
        await self.vote(team_id=team_id, channel=channel, ts=ts, user=user, vote=vote, member=member)

    async def vote(
        self, *, team_id: str, channel: str, ts: str, user: str, vote: str, member: str, removed: bool = False
    ) -> None:
        """Count ``user``'s ``vote`` ("up"/"down") on the answer whose message is ``ts``; ``member``
        names what cast it (a reaction, a button)."""
        try:
            request_id = await self.limits.answer_request(team_id=team_id, channel=channel, ts=ts)
            if request_id is None:
                return  # not one of our answers (or too old)
            key = policy.vote_key(team_id, request_id, user, vote)
            if removed:
                changed = await self.limits.remove_vote(key=key, member=member)
            else:
                ttl = self.settings.conversation_ttl_seconds  # as the answer's own entry
                changed = await self.limits.add_vote(key=key, member=member, ttl=ttl)
        except StoreUnavailable:
            logger.warning("could not record a %s vote", vote)
            return
        with logs.bound_request(request_id):
            if not changed:
                logger.debug("feedback %s on request %s from %s: unchanged", vote, request_id, user)
            elif removed:
                self.metrics.feedback_removed(vote)
                logger.info("feedback %s on request %s withdrawn by %s", vote, request_id, user)
            else:
                self.metrics.feedback(vote)
                logger.info("feedback %s on request %s from %s", vote, request_id, user)
