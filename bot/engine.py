"""The engine: builds the parts that accept and answer questions, and is what the handlers (the
``handlers.base.Intake`` protocol) and the worker see.

    handlers ─▶ Intake (intake.py): dedup → access → durable enqueue → 👀 → placeholder
    worker   ─▶ AnswerRunner (runner.py): placeholder → history → view (views.py) → model → finish
    buttons  ─▶ Controls (controls.py): Stop, Retry;  reactions ─▶ Feedback (feedback.py)

Nothing here decides anything: each part is one module with one job.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.access import Access
from bot.attachments import Attachments
from bot.controls import Controls
from bot.feedback import Feedback
from bot.followups import ThreadFollowups
from bot.gateway import SlackGateway
from bot.generate import Generator
from bot.history import History
from bot.intake import Intake
from bot.jobs import Job, Request
from bot.limits.base import LimitStore
from bot.limits.memory import MemoryLimitStore
from bot.metrics import Metrics
from bot.model.base import ModelClient
from bot.notices import QueueNotices
from bot.placeholders import Placeholders
from bot.queue.base import JobQueue
from bot.reactions import Reactions
from bot.replies import Replies
from bot.runner import AnswerRunner
from bot.settings import Settings
from bot.signals import MemorySignals, Signals
from bot.store.base import ConversationStore, Deduplicator
from bot.summary import Summaries
from bot.views import Views

logger = logging.getLogger(__name__)


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        gateway: SlackGateway,
        model: ModelClient,
        queue: JobQueue,
        store: ConversationStore,
        dedup: Deduplicator,
        bot_user_id: str | None,
        signals: Signals | None = None,
        metrics: Metrics | None = None,
        limits: LimitStore | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        limits = limits or MemoryLimitStore()
        self.signals: Signals = signals or MemorySignals()
        self.replies = Replies(gateway=gateway)
        self.reactions = Reactions(settings=settings, gateway=gateway)
        self.placeholders = Placeholders(gateway=gateway, claims=dedup)
        self.notices = QueueNotices(queue=queue, gateway=gateway, placeholder_of=self.placeholders.known)
        self.access = Access(settings=settings, limits=limits, metrics=self.metrics)
        self.feedback_votes = Feedback(
            settings=settings, limits=limits, metrics=self.metrics, bot_user_id=bot_user_id
        )
        self.followups = ThreadFollowups(settings=settings, store=store, claims=dedup)
        self.intake = Intake(
            settings=settings,
            metrics=self.metrics,
            dedup=dedup,
            queue=queue,
            access=self.access,
            placeholders=self.placeholders,
            notices=self.notices,
            reactions=self.reactions,
            replies=self.replies,
            followups=self.followups,
        )
        self.controls = Controls(
            gateway=gateway,
            replies=self.replies,
            signals=self.signals,
            dedup=dedup,
            store=store,
            resubmit=lambda request: self.intake.submit(request, dedup=False),
            on_retry=self.reactions.retried,
        )
        self.generator = Generator(settings=settings, model=model, metrics=self.metrics)
        self.runner = AnswerRunner(
            settings=settings,
            metrics=self.metrics,
            placeholders=self.placeholders,
            history=History(store=store, gateway=gateway, bot_user_id=bot_user_id),
            views=Views(settings=settings, gateway=gateway, on_stream=self.controls.streaming, claims=dedup),
            generator=self.generator,
            controls=self.controls,
            access=self.access,
            feedback=self.feedback_votes,
            notices=self.notices,
            reactions=self.reactions,
            replies=self.replies,
            store=store,
            summaries=Summaries(settings=settings, gateway=gateway, store=store, bot_user_id=bot_user_id),
            attachments=Attachments(settings=settings, downloads=gateway.files),
            followups=self.followups,
        )

    # -- the handlers' side (handlers.base.Intake) ---------------------------------------------
    async def submit(self, request: Request, *, dedup: bool = True) -> None:
        await self.intake.submit(request, dedup=dedup)

    async def submit_followup(self, request: Request) -> None:
        if await self.followups.followed(request):
            await self.intake.submit(request)

    async def help(self, request: Request) -> None:
        await self.intake.help(request)

    async def stop(self, *, request_id: str, user: str, channel: str) -> None:
        # Listeners run before the ack (Bolt's process_before_response): Slack calls go after it.
        self.intake.later(
            self.controls.stop(request_id=request_id, user=user, channel=channel), name=f"stop-{request_id}"
        )

    async def retry(
        self,
        *,
        request_id: str,
        user: str,
        channel: str,
        message_ts: str,
        blocks: list[dict[str, Any]],
        text: str = "",
    ) -> None:
        self.intake.later(
            self.controls.retry(
                request_id=request_id,
                user=user,
                channel=channel,
                message_ts=message_ts,
                blocks=blocks,
                text=text,
            ),
            name=f"retry-{request_id}",
        )

    async def stop_streams(self, *, channel: str, thread_ts: str, message_ts: list[str], user: str) -> None:
        self.intake.later(
            self.controls.stop_streams(
                channel=channel, thread_ts=thread_ts, message_ts=message_ts, user=user
            ),
            name=f"stop-streams-{channel}-{thread_ts}",
        )

    async def feedback_button(self, *, team_id: str, channel: str, ts: str, user: str, vote: str) -> None:
        await self.feedback_votes.button(team_id=team_id, channel=channel, ts=ts, user=user, vote=vote)

    async def feedback(
        self, *, team_id: str, channel: str, ts: str, user: str, reaction: str, removed: bool = False
    ) -> None:
        await self.feedback_votes.reaction(
            team_id=team_id, channel=channel, ts=ts, user=user, reaction=reaction, removed=removed
        )

    # -- the worker's and the runtime's side -----------------------------------------------------
    async def run(self, job: Job) -> None:
        await self.runner.run(job)

    async def job_finished(self, job: Job) -> None:
        """Worker hook: the line of the job's channel moved."""
        self.notices.finished(job)

    async def stop_local(self, request_id: str, user: str, channel: str) -> None:
        await self.controls.stop_local(request_id, user, channel)

    async def intake_settled(self, timeout: float) -> bool:
        return await self.intake.settled(timeout)

    async def abandon(self, job: Job) -> None:
        await self.runner.abandon(job)

    async def close(self, *, linger: float = 2.0) -> None:
        """Queue notices are dropped at once; reactions still on their way (the ✅ or ⚠️ of the last
        answers) and placeholder clean-ups still reading a thread get ``linger`` seconds, together."""
        await self.notices.close()
        await self.intake.close()
        await asyncio.gather(self.reactions.close(linger=linger), self.placeholders.close(linger=linger))
