"""Status reactions on a question: 👀 while it is answered, ✅ or ⚠️ when done.

Decoration, so the lowest priority: every reaction takes a slot of its method's budget (the gateway
paces ``reactions.add``/``reactions.remove`` per workspace, shared by replicas) and never meets a 429.
The changes of one question are applied in order by one task, and merged: a state superseded before
it was shown is skipped (no 👀 when the answer is already done by the time a slot frees up).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.errors import SlackError
from bot.gateway import SlackGateway
from bot.jobs import Request
from bot.settings import Settings
from bot.tasks import KeptTasks

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # of one change (a 429 waits out the method's pause first)


@dataclass
class _Question:
    request: Request
    wanted: str | None = None
    shown: str | None = None
    task: asyncio.Task[None] | None = None


class Reactions:
    def __init__(self, *, settings: Settings, gateway: SlackGateway) -> None:
        self.settings = settings
        self.gateway = gateway
        self._questions: dict[str, _Question] = {}
        self._tasks = KeptTasks(logger, level=logging.INFO)

    def working(self, request: Request) -> None:
        self._want(request, self.settings.reaction_working)

    def done(self, request: Request, *, failed: bool) -> None:
        self._want(request, self.settings.reaction_failed if failed else self.settings.reaction_done)

    def retried(self, request: Request) -> None:
        """``request`` asks a failed question again: its ⚠️ goes with the next change."""
        if self.settings.status_reactions and request.ts is not None:
            question = self._questions.setdefault(request.id, _Question(request))
            question.shown = self.settings.reaction_failed

    def _want(self, request: Request, name: str) -> None:
        if not self.settings.status_reactions or request.ts is None:
            return
        question = self._questions.setdefault(request.id, _Question(request))
        question.wanted = name
        if question.task is None:
            question.task = self._tasks.start(self._apply(question), name=f"reactions-{request.id}")

    async def _apply(self, question: _Question) -> None:
        request = question.request
        try:
            while question.shown != question.wanted:
                target = question.wanted
                if question.shown is not None:
                    await self._change("remove", request, question.shown)
                    question.shown = None
                    continue  # the wish may have changed while this waited for a slot
                if target is not None:
                    await self._change("add", request, target)
                question.shown = target
        finally:
            question.task = None
            if question.wanted != self.settings.reaction_working:
                self._questions.pop(request.id, None)  # done: nothing will change it again

    async def _change(self, how: str, request: Request, name: str) -> None:
        call = self.gateway.add_reaction if how == "add" else self.gateway.remove_reaction
        for _ in range(MAX_ATTEMPTS):
            try:
                await call(team_id=request.team_id, channel=request.channel, ts=request.ts or "", name=name)
                return
            except SlackError as err:
                if err.retry_after is None:
                    logger.info("could not %s reaction %s (request %s): %s", how, name, request.id, err.error)
                    return

    async def close(self, *, linger: float) -> None:
        """The last reactions get ``linger`` seconds to land; the rest are dropped."""
        await self._tasks.close(linger=linger)
