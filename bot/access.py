"""Who may ask, and how much: channel and user allowlists, per-user rate, daily token budgets.

Checked at intake after the busy check (a question the channel cannot take costs the asker no
rate-limit slot) and before anything is posted (a refusal costs no model call)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.jobs import Request, Source
from bot.limits import policy
from bot.limits.base import LimitStore
from bot.metrics import Metrics
from bot.settings import Settings
from bot.store.base import StoreUnavailable

logger = logging.getLogger(__name__)


class Access:
    def __init__(self, *, settings: Settings, limits: LimitStore, metrics: Metrics) -> None:
        self.settings = settings
        self.limits = limits
        self.metrics = metrics

    def channel_allowed(self, request: Request) -> bool:
        allowed = self.settings.allowed_channels
        if not allowed or request.channel in allowed:
            return True
        is_dm = request.source is Source.DM or request.channel.startswith("D")
        return is_dm and "dm" in allowed

    async def refusal(self, request: Request) -> str | None:
        """What to tell the asker when the question may not be answered; ``None`` when it may.
        Budgets are checked before the rate limit, so a refused question does not use up a slot."""
        s = self.settings
        reason: str | None = None
        text: str | None = None
        if not self.channel_allowed(request):
            reason, text = "channel", policy.CHANNEL_REFUSAL
        elif s.allowed_users and request.user not in s.allowed_users:
            reason, text = "user", policy.USER_REFUSAL
        else:
            try:
                refused = await self._limit_refusal(request)
            except StoreUnavailable:
                logger.warning("limits unavailable; answering without checking them")
                refused = None
            if refused is not None:
                reason, text = refused
        if reason is None or text is None:
            return None
        self.metrics.refused(reason)
        logger.info("request %s refused (%s)", request.id, reason)
        return text

    async def _limit_refusal(self, request: Request) -> tuple[str, str] | None:
        """(reason, text) when a daily budget is used up or the user's rate limit is reached."""
        s = self.settings
        now = datetime.now(UTC)
        day = policy.day_of(now)
        if s.daily_tokens_workspace is not None:
            used = await self.limits.usage(key=policy.workspace_usage_key(day, request.team_id))
            if used >= s.daily_tokens_workspace:
                return "budget", policy.budget_refusal(
                    workspace=True, limit=s.daily_tokens_workspace, now=now
                )
        if s.daily_tokens_user is not None:
            used = await self.limits.usage(key=policy.user_usage_key(day, request.team_id, request.user))
            if used >= s.daily_tokens_user:
                return "budget", policy.budget_refusal(workspace=False, limit=s.daily_tokens_user, now=now)
        if s.user_rate is not None:
            wait = await self.limits.take(
                key=policy.rate_key(request.team_id, request.user),
                limit=s.user_rate.count,
                window=s.user_rate.seconds,
            )
            if wait > 0:
                return "rate", policy.rate_refusal(s.user_rate, wait)
        return None

    async def count_tokens(self, request: Request, tokens: int) -> None:
        """Add an answer's tokens to the daily budgets (when they are on). Called when the model is
        done and before the final text is sent, so the next question already sees them."""
        s = self.settings
        if tokens <= 0 or (s.daily_tokens_workspace is None and s.daily_tokens_user is None):
            return
        day = policy.day_of(datetime.now(UTC))
        try:
            if s.daily_tokens_workspace is not None:
                key = policy.workspace_usage_key(day, request.team_id)
                await self.limits.add_usage(key=key, amount=tokens, ttl=policy.USAGE_TTL_SECONDS)
            if s.daily_tokens_user is not None:
                key = policy.user_usage_key(day, request.team_id, request.user)
                await self.limits.add_usage(key=key, amount=tokens, ttl=policy.USAGE_TTL_SECONDS)
        except StoreUnavailable:
            logger.warning("could not count %d tokens of request %s", tokens, request.id)
