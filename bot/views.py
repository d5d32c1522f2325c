"""Chooses and builds the answer view of a job (``bot.view``), once, when its answer starts."""

from __future__ import annotations

import logging

from bot.errors import SlackError
from bot.gateway import SlackGateway
from bot.jobs import Job
from bot.settings import Settings
from bot.view.base import AnswerView
from bot.view.edit import EditView

logger = logging.getLogger(__name__)


class Views:
    def __init__(self, *, settings: Settings, gateway: SlackGateway) -> None:
        self.settings = settings
        self.gateway = gateway

    async def open(
        self, job: Job, *, prefix: str, shown_text: str | None, thread_ts: str | None
    ) -> AnswerView:
        assert job.placeholder_ts is not None
        return EditView(
            gateway=self.gateway,
            team_id=job.request.team_id,
            channel=job.request.channel,
            placeholder_ts=job.placeholder_ts,
            thread_ts=thread_ts,
            interval=self.settings.edit_interval_seconds,
            prefix=prefix,
            final_deadline=self.settings.final_edit_deadline_seconds,
            request_id=job.request.id,
            stop_button=True,
            shown_text=shown_text,
            continuations=await self._earlier_continuations(job, thread_ts) if job.resumed else None,
        )

    async def _earlier_continuations(self, job: Job, thread_ts: str | None) -> list[str]:
        """A resumed answer: the continuation messages its earlier worker posted (pieces 1, 2, …),
        so they are edited or removed instead of left in the thread beside a second copy."""
        assert job.placeholder_ts is not None
        root = thread_ts or job.placeholder_ts
        try:
            pieces = await self.gateway.posted_pieces(
                channel=job.request.channel, thread_ts=root, request_id=job.request.id
            )
        except SlackError as err:
            logger.warning("could not look for earlier pieces of request %s: %s", job.request.id, err.error)
            return []
        found: list[str] = []
        while len(found) + 1 in pieces:
            found.append(pieces[len(found) + 1])
        return found
