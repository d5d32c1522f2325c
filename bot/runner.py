"""The answer runner: the queue's job handler. It orchestrates one job and nothing else:
placeholder → context → view → model → finish → remember. Failures are caught here, once, and told
to the user in plain words (``bot.errors``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot import logs
from bot.access import Access
from bot.attachments import Attachments, Gathered
from bot.context import Prompt, Turn, build_prompt
from bot.controls import Controls
from bot.errors import SlackError, user_message
from bot.feedback import Feedback
from bot.followups import ThreadFollowups
from bot.generate import Generated, Generator
from bot.history import History, thread_root
from bot.jobs import Job, Source
from bot.metrics import AnswerStats, Metrics
from bot.notices import QueueNotices
from bot.placeholders import CANNOT_POST, VIA_RESPONSE_URL, Placeholders
from bot.reactions import Reactions
from bot.replies import Replies
from bot.settings import Settings
from bot.store.base import ConversationStore, StoreUnavailable
from bot.summary import Summaries, ThreadUnreadable
from bot.texts import (
    CANNOT_POST_TEXT,
    INVITE_HINT,
    LONG_QUESTION_NOTE,
    RESTARTED_TEXT,
    RESUMING_TEXT,
    STOPPED_PREFIX,
    SUMMARY_CANNOT_POST_TEXT,
    THINKING_TEXT,
    THREAD_UNREADABLE_TEXT,
    WARNING_PREFIX,
    command_header,
    stopped_note,
)
from bot.view.base import AnswerView
from bot.view.collected import CollectedView
from bot.views import Views
from bot.worker import TryLater

logger = logging.getLogger(__name__)

MAX_TRIES = 6  # claims of one job whose placeholder Slack keeps refusing (transiently)


class AnswerRunner:
    def __init__(
        self,
        *,
        settings: Settings,
        metrics: Metrics,
        placeholders: Placeholders,
        history: History,
        views: Views,
        generator: Generator,
        controls: Controls,
        access: Access,
        feedback: Feedback,
        notices: QueueNotices,
        reactions: Reactions,
        replies: Replies,
        store: ConversationStore,
        summaries: Summaries,
        attachments: Attachments,
        followups: ThreadFollowups,
    ) -> None:
        self.settings = settings
        self.attachments = attachments
        self.metrics = metrics
        self.placeholders = placeholders
        self.history = history
        self.views = views
        self.generator = generator
        self.controls = controls
        self.access = access
        self.feedback = feedback
        self.notices = notices
        self.reactions = reactions
        self.replies = replies
        self.store = store
        self.summaries = summaries
        self.followups = followups

    async def run(self, job: Job) -> None:
        """Never raises for an ordinary failure: the user is told."""
        with logs.bound_request(job.request.id):
            stats = self._started(job)
            outcome: str | None = None  # None: handed back to the queue (cancelled)
            try:
                outcome = await self._run(job, stats)
            except (asyncio.CancelledError, TryLater):
                raise
            except Exception as err:
                outcome = "failed"
                logger.exception("internal error (request %s)", job.request.id)
                await self.replies.replace_placeholder(
                    job, WARNING_PREFIX + user_message(err, job.request.id)
                )
                self.reactions.done(job.request, failed=True)
            finally:
                if outcome is not None:
                    self.placeholders.settle(job)
                self.placeholders.forget(job)
                self.metrics.answer_finished(outcome)
            logger.info(
                "request %s finished: %s (%d prompt + %d completion tokens%s)",
                job.request.id,
                outcome,
                stats.prompt_tokens,
                stats.completion_tokens,
                ", estimated" if stats.estimated else "",
            )

    def _started(self, job: Job) -> AnswerStats:
        """Record that the job left the queue; returns the tracker of its answer's timing and tokens."""
        now = time.time()
        if not job.resumed:  # a resumed job left the queue once already
            self.metrics.started(wait_seconds=now - job.enqueued_at if job.enqueued_at > 0 else None)
        self.metrics.answer_started()
        return AnswerStats(self.metrics, origin=job.enqueued_at if job.enqueued_at > 0 else now)

    async def _run(self, job: Job, stats: AnswerStats) -> str:
        """Answer the job; returns the outcome ("ok", "failed", "stopped" or "refused")."""
        request = job.request
        try:
            owner = await self.placeholders.adopt(job, THINKING_TEXT)
        except SlackError as err:
            if not err.transient or job.tries >= MAX_TRIES:
                raise
            # Slack is failing for now and nothing is shown yet: keep the question, try again later.
            raise TryLater(min(30.0, self.settings.retry_base_seconds * 2**job.tries)) from None
        if owner == CANNOT_POST:
            summary = request.source is Source.SUMMARY
            await self.replies.tell_privately(
                request, SUMMARY_CANNOT_POST_TEXT if summary else CANNOT_POST_TEXT
            )
            self.reactions.done(request, failed=True)
            return "refused"
        job.via_response_url = owner == VIA_RESPONSE_URL
        if not job.via_response_url:
            job.placeholder_ts = owner
            if request.source is Source.COMMAND and owner:
                await self.followups.answering(request, owner)  # the answer roots a thread
        question = Turn(role="user", text=request.text, user=request.user, ts=request.ts)
        if request.source is Source.SUMMARY:
            try:
                prompt, notes = await self.summaries.prompt(job)
            except ThreadUnreadable:
                await self.replies.replace_placeholder(job, WARNING_PREFIX + THREAD_UNREADABLE_TEXT)
                self.reactions.done(request, failed=True)
                return "failed"
        else:
            # Files are downloaded here, in the worker: never before the ack.
            files = await self.attachments.gather(request)
            question = Turn(role="user", text=files.question(request.text), user=request.user, ts=request.ts)
            prompt = build_prompt(
                system_prompt=self.settings.system_prompt,
                history=await self.history.turns(job),
                question=question,
                budget_tokens=self.settings.context_tokens,
                images=files.images,
            )
            notes = self._notes(files, prompt)
        try:
            await self.store.remember_request(request_id=request.id, data=request.to_dict())
        except StoreUnavailable:
            logger.warning("could not keep request %s for a retry", request.id)
        view = await self._view(job, notes)
        if job.placeholder_ts is not None:
            # The answer's message is known now: a vote on it counts even before the answer ends.
            await self.feedback.remember_answer(request, [job.placeholder_ts])
        with self.controls.live(request) as stopped:
            async with view:
                generated = await self._generate_or_stop(prompt, view, job, stopped, stats)
                note, failed = generated.note, generated.failed
                await self.access.count_tokens(request, stats.total_tokens)
                # Retry only where asking again can help (not a rejected key or an unknown model).
                view.finish(note, button="retry" if failed and generated.retry_helps else None)
        if not failed:  # A failed answer is not a turn: its Retry asks the same question again, once.
            if request.source is Source.SUMMARY:
                await self.summaries.remember(job, view.text)
            else:
                await self.history.remember(job, question, view.text)
        await self.feedback.remember_answer(request, [ts for ts in view.messages if ts != job.placeholder_ts])
        self.metrics.edits(view.edits)
        if self.settings.log_message_text:
            logger.info("answer: %s", view.text)
        self.reactions.done(request, failed=failed)
        if failed:
            return "failed"
        if note is not None and note.startswith(STOPPED_PREFIX):
            return "stopped"
        if not isinstance(view, CollectedView) or view.sent:
            stats.final_text()  # the whole answer is in Slack
        return "ok"

    def _notes(self, files: Gathered, prompt: Prompt) -> list[str]:
        notes = list(files.notes)
        if prompt.question_truncated:
            notes.append(LONG_QUESTION_NOTE)
        return notes

    async def _view(self, job: Job, notes: list[str]) -> AnswerView:
        request = job.request
        if job.via_response_url:
            return CollectedView(
                header=command_header(request), notes=notes, footer=INVITE_HINT, send=self._respond(job)
            )
        await self.notices.settled(job)  # a queue notice being edited lands before the first edit
        prefix = [command_header(request)] if request.source is Source.COMMAND else []
        view = await self.views.open(
            job,
            prefix="\n\n".join(prefix + notes),
            # What the placeholder shows: this replica's latest notice, else what it was posted
            # with (another replica may have moved its notice since: either way not "Thinking").
            shown_text="" if job.resumed else self.notices.shown(job) or job.posted_text,
            thread_ts=thread_root(job),
        )
        if job.resumed:
            view.set_status(RESUMING_TEXT)
        return view

    def _respond(self, job: Job) -> Callable[[str], Awaitable[bool]]:
        request = job.request

        async def send(text: str) -> bool:
            assert request.response_url is not None
            try:
                await self.replies.gateway.respond(
                    response_url=request.response_url, payload={"response_type": "ephemeral", "text": text}
                )
            except SlackError as err:
                logger.error("could not answer through response_url (request %s): %s", request.id, err.error)
                return False
            return True

        return send

    async def _generate_or_stop(
        self, prompt: Prompt, view: AnswerView, job: Job, stopped: asyncio.Event, stats: AnswerStats
    ) -> Generated:
        """Generate, unless Stop is pressed first: then cancel the generation at once and keep what
        was written."""
        request = job.request
        generation = asyncio.create_task(
            self.generator.generate(prompt, view, request, stats), name=f"generate-{request.id}"
        )
        stop = asyncio.create_task(stopped.wait(), name=f"stop-{request.id}")
        try:
            await asyncio.wait({generation, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            await asyncio.gather(stop, return_exceptions=True)
        if generation.done():
            return generation.result()
        generation.cancel()
        await asyncio.gather(generation, return_exceptions=True)
        return Generated(stopped_note(self.controls.stopped_by(request.id)))

    async def abandon(self, job: Job) -> None:
        """Shutdown with an in-memory queue: ``job`` will not be answered by this process (nor by
        any other), so its placeholder says so instead of waiting forever."""
        known = await self.placeholders.known(job)
        if known is not None:
            job.placeholder_ts = known
        await self.replies.replace_placeholder(job, WARNING_PREFIX + RESTARTED_TEXT)
        self.reactions.done(job.request, failed=True)
