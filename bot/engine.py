"""The engine: accepts requests from the handlers and answers them.

``submit`` runs right after Slack's ack: dedup, the placeholder (so the user sees at once that the
bot heard them), then the queue. ``run`` is the queue's job handler: context, model stream, streamer,
store. Failures are caught here, once, and told to the user in plain words (``bot.errors``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bot import logs
from bot.constants import FILES_NOT_READ_NOTE, HELP_TEXT, INVITE_HINT, THINKING_TEXT
from bot.context import Prompt, Turn, build_prompt, drop_oldest
from bot.errors import (
    CannotPost,
    ContextTooLong,
    EmptyAnswer,
    ModelError,
    ModelTimeout,
    SlackError,
    user_message,
)
from bot.jobs import Job, Request, Source, new_request_id
from bot.limits import policy
from bot.limits.base import LimitStore
from bot.limits.memory import MemoryLimitStore
from bot.llm import LLMClient
from bot.metrics import AnswerStats, Metrics
from bot.payloads import dedup_keys, is_from_bot, strip_bot_mention
from bot.queue.base import JobQueue, QueueFull, QueueUnavailable
from bot.ratelimit.base import EditBudget, Priority
from bot.render import escape, to_mrkdwn
from bot.settings import Settings
from bot.signals import MemorySignals, Signals
from bot.slack import SlackGateway
from bot.store.base import ConversationStore, Deduplicator, StoreUnavailable
from bot.streamer import Streamer

logger = logging.getLogger(__name__)

WARNING_PREFIX = ":warning: "
BUSY_TEXT = "This channel is busy: too many questions are waiting. Please ask again in a few minutes."
RESTARTED_TEXT = "I was restarted before I could answer this. Please ask again."
QUEUE_DOWN_TEXT = "I can't take questions right now (my queue is unavailable). Please try again shortly."
RESUMING_TEXT = "_resuming…_"
STOPPED_PREFIX = ":black_square_for_stop: _Stopped"
CANNOT_POST_TEXT = "Sorry, I couldn't post in this channel, so I can't answer here."


def queued_text(ahead: int) -> str:
    if ahead <= 0:
        return THINKING_TEXT
    return f"_Queued: {ahead} request{'s' if ahead != 1 else ''} ahead of you…_"


def worth_a_notice(position: int) -> bool:
    """Queue notices cost edits from the workspace's budget: each finished answer would otherwise
    re-edit every waiting placeholder. The last two places are shown exactly, the rest in steps of 5.
    Position 0 is never a notice: the answer's own streamer replaces the placeholder as it starts."""
    return 0 < position <= 2 or (position > 2 and position % 5 == 0)


def command_header(request: Request) -> str:
    """The first lines of a /ask answer: who asked what."""
    question = "\n".join(f">{line}" if line else ">" for line in escape(request.text).splitlines())
    return f"<@{request.user}> asked:\n{question}"


FEEDBACK_VOTES = {"+1": "up", "thumbsup": "up", "-1": "down", "thumbsdown": "down"}


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ModelError) and exc.retryable


class AnswerSink(Protocol):
    """Where a generated answer goes: the ``Streamer``, or ``Collected`` for a response_url."""

    @property
    def text(self) -> str: ...
    def append(self, delta: str) -> None: ...
    def replace(self, text: str) -> None: ...
    def set_status(self, status: str | None) -> None: ...


class Collected:
    """An answer gathered whole (a /ask answered through response_url: one final post, no edits)."""

    def __init__(self) -> None:
        self.text = ""

    def append(self, delta: str) -> None:
        self.text += delta

    def replace(self, text: str) -> None:
        self.text = text

    def set_status(self, status: str | None) -> None:
        pass  # response_url allows too few posts for a "retrying" status


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        gateway: SlackGateway,
        llm: LLMClient,
        queue: JobQueue,
        store: ConversationStore,
        dedup: Deduplicator,
        budget: EditBudget,
        bot_user_id: str | None,
        signals: Signals | None = None,
        metrics: Metrics | None = None,
        limits: LimitStore | None = None,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.llm = llm
        self.queue = queue
        self.store = store
        self.dedup = dedup
        self.budget = budget
        self.bot_user_id = bot_user_id
        self.signals: Signals = signals or MemorySignals()
        self.metrics = metrics or Metrics()
        self.limits: LimitStore = limits or MemoryLimitStore()
        self._stats: dict[str, AnswerStats] = {}  # request id -> its answer's timing and tokens
        self._live: dict[str, tuple[Request, asyncio.Event]] = {}  # answers streaming here now
        self._stopped_by: dict[str, str] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._reactions: dict[str, asyncio.Task[None]] = {}  # request id -> its newest reaction change
        self._intake_locks: dict[str, list[Any]] = {}  # queue key -> [lock, users]
        self._intake_idle = asyncio.Event()  # set while no question is being accepted
        self._intake_idle.set()
        self._shown: dict[str, str] = {}  # job id -> the queue notice its placeholder shows
        self._notices: dict[str, asyncio.Task[None]] = {}
        self._notices_dirty: set[str] = set()
        self._notice_locks: dict[str, asyncio.Lock] = {}  # job id -> held while its notice is edited

    # -- intake: called by the handlers, after the ack -----------------------------------------
    async def help(self, request: Request) -> None:
        """Reply to an empty mention or DM with a short help text, no model call."""
        try:
            if not await self.dedup.first_time(keys=dedup_keys(request)):
                return
        except StoreUnavailable:
            pass  # a help text twice is better than none
        try:
            await self.gateway.post_message(
                channel=request.channel, text=HELP_TEXT, thread_ts=request.thread_ts
            )
        except SlackError as err:
            logger.warning("could not post help (request %s): %s", request.id, err.error)

    async def submit(self, request: Request, *, dedup: bool = True) -> None:
        """Accept a question: dedup, post the placeholder, queue it. Requests of one channel are
        accepted one at a time, so they are queued in the order they arrived."""
        key = request.queue_key
        lock = self._intake_locks.setdefault(key, [asyncio.Lock(), 0])
        lock[1] += 1
        self._intake_idle.clear()
        try:
            async with lock[0]:
                with logs.bound_request(request.id):
                    await self._submit(request, dedup=dedup)
        finally:
            lock[1] -= 1
            if lock[1] == 0:
                del self._intake_locks[key]
            if not self._intake_locks:
                self._intake_idle.set()

    async def intake_settled(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until no question is being accepted: each has been
        queued or answered with a refusal. Used at shutdown, before the in-memory queue is drained."""
        try:
            async with asyncio.timeout(timeout):
                await self._intake_idle.wait()
        except TimeoutError:
            return False
        return True

    async def _submit(self, request: Request, *, dedup: bool) -> None:
        try:
            first = not dedup or await self.dedup.first_time(keys=dedup_keys(request))
        except StoreUnavailable:
            await self._reply(request, WARNING_PREFIX + QUEUE_DOWN_TEXT)
            return
        if not first:
            logger.info("duplicate delivery ignored (request %s, event %s)", request.id, request.event_id)
            return
        logger.info("request %s from %s in %s", request.id, request.source.value, request.channel)
        self.metrics.request(request.source.value)
        if self.settings.log_message_text:
            logger.info("question from %s: %s", request.user, request.text)
        # Busy (or down) before the limits: taking the user's rate-limit slot is the last check, so a
        # question the channel cannot take does not cost the asker one of their questions.
        try:
            ahead = await self.queue.ahead(queue_key=request.queue_key)
            waiting = len(await self.queue.waiting(queue_key=request.queue_key))
        except QueueUnavailable:
            await self._reply(request, WARNING_PREFIX + QUEUE_DOWN_TEXT)
            return
        if waiting >= self.settings.max_queue_per_channel:
            await self._reply(request, BUSY_TEXT)
            return
        refusal = await self._refusal(request)
        if refusal is not None:
            await self._reply(request, refusal)
            return
        job = Job(request=request)
        try:
            if request.source is Source.COMMAND:
                job.placeholder_ts = await self._post_command_placeholder(request, queued_text(ahead))
                job.via_response_url = job.placeholder_ts is None
            else:
                job.placeholder_ts = await self._post_placeholder(
                    request, text=queued_text(ahead), thread_ts=request.thread_ts
                )
        except SlackError as err:
            logger.error(
                "could not post a placeholder (request %s, channel %s): %s",
                request.id,
                request.channel,
                err.error,
            )
            await self._tell_privately(
                request, "Sorry, I couldn't post in this channel, so I can't answer here."
            )
            return
        self._shown[job.id] = job.posted_text = queued_text(ahead)
        try:
            actual = await self.queue.enqueue(job=job, max_waiting=self.settings.max_queue_per_channel)
        except QueueFull:
            await self._replace_placeholder(job, BUSY_TEXT)
            return
        except QueueUnavailable:
            await self._replace_placeholder(job, WARNING_PREFIX + QUEUE_DOWN_TEXT)
            return
        self.metrics.queued()
        self._react(request, add=self.settings.reaction_working)
        if actual != ahead:
            self.line_moved_in(request.queue_key)

    # -- access control and limits (checked before the placeholder: a refusal costs no model call) ---
    def _channel_allowed(self, request: Request) -> bool:
        allowed = self.settings.allowed_channels
        if not allowed or request.channel in allowed:
            return True
        is_dm = request.source is Source.DM or request.channel.startswith("D")
        return is_dm and "dm" in allowed

    async def _refusal(self, request: Request) -> str | None:
        """What to tell the asker when the question may not be answered; ``None`` when it may.
        Budgets are checked before the rate limit, so a refused question does not use up a slot."""
        s = self.settings
        reason: str | None = None
        text: str | None = None
        if not self._channel_allowed(request):
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

    async def _count_tokens(self, request: Request) -> None:
        """Add an answer's tokens to the daily budgets (when they are on). Called when the model is
        done and before the final text is sent, so the next question already sees them."""
        s = self.settings
        stats = self._stats.get(request.id)
        tokens = stats.total_tokens if stats is not None else 0
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

    async def _remember_answer(self, request: Request, ts_list: list[str]) -> None:
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

    async def feedback(
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
        try:
            request_id = await self.limits.answer_request(team_id=team_id, channel=channel, ts=ts)
            if request_id is None:
                return  # not one of our answers (or too old)
            key = policy.vote_key(team_id, request_id, user, vote)
            member = f"{ts}:{reaction}"
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

    async def _post_placeholder(self, request: Request, *, text: str, thread_ts: str | None) -> str:
        return await self.gateway.post_answer(
            channel=request.channel, text=text, thread_ts=thread_ts, request_id=request.id
        )

    async def _reply(self, request: Request, text: str) -> None:
        """A short reply in the request's thread (or privately for a command)."""
        if request.source is Source.COMMAND:
            await self._tell_privately(request, text)
            return
        try:
            await self.gateway.post_message(channel=request.channel, text=text, thread_ts=request.thread_ts)
        except SlackError as err:
            logger.warning("could not reply (request %s): %s", request.id, err.error)

    async def _replace_placeholder(self, job: Job, text: str) -> None:
        """Show ``text`` (a refusal, a failure) instead of the placeholder, and nothing else: no
        answer, no button. A rate limit is waited out (server errors were already retried by the
        client's handlers: one retry layer); a placeholder that still will not take it (deleted, or
        Slack failing) gets ``text`` as a new message in its thread instead, so a failure is never
        left looking like "Thinking…"."""
        self._shown.pop(job.id, None)
        request = job.request
        if job.placeholder_ts is None:
            await self._tell_privately(request, text)
            return
        if request.source is Source.COMMAND:
            text = f"{command_header(request)}\n\n{text}"
        for _ in range(3):
            try:
                await self.budget.acquire(team_id=request.team_id, priority=Priority.FINAL)
                await self.gateway.update_message(channel=request.channel, ts=job.placeholder_ts, text=text)
                return
            except SlackError as err:
                logger.warning("could not update the placeholder (request %s): %s", request.id, err.error)
                if err.retry_after is None:
                    break
                await self.budget.pause(team_id=request.team_id, seconds=err.retry_after)
        try:
            await self.gateway.post_message(
                channel=request.channel, text=text, thread_ts=self._thread_root(job) or job.placeholder_ts
            )
        except SlackError as err:
            logger.error("could not tell request %s's asker either: %s", request.id, err.error)

    async def abandon(self, job: Job) -> None:
        """Shutdown with an in-memory queue: ``job`` will not be answered by this process (nor by
        any other), so its placeholder says so instead of waiting forever."""
        await self._replace_placeholder(job, WARNING_PREFIX + RESTARTED_TEXT)
        self._react(job.request, add=self.settings.reaction_failed, remove=self.settings.reaction_working)

    # -- status reactions (decoration: best effort, never blocking an answer) -----------------------
    def _react(self, request: Request, *, add: str | None, remove: str | None = None) -> None:
        if not self.settings.status_reactions or request.ts is None:
            return

        # The changes of one question's reactions run in order (a quick failure must not leave 👀
        # beside ⚠️): each waits for the one before it.
        before = self._reactions.get(request.id)

        async def change() -> None:
            if before is not None:
                await asyncio.gather(before, return_exceptions=True)
            try:
                if remove:
                    await self.gateway.remove_reaction(
                        channel=request.channel, ts=request.ts or "", name=remove
                    )
                if add:
                    await self.gateway.add_reaction(channel=request.channel, ts=request.ts or "", name=add)
            finally:
                if self._reactions.get(request.id) is task:
                    del self._reactions[request.id]

        task = self._spawn(change(), name=f"reaction-{request.id}")
        self._reactions[request.id] = task

    def _spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Run a best-effort side task; it is kept, and its failure is logged, not raised."""
        task = asyncio.create_task(coro, name=name)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_task_done)
        return task

    def _side_task_done(self, task: asyncio.Task[None]) -> None:
        self._side_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.info("%s failed: %s", task.get_name(), task.exception())

    # -- Stop and Retry buttons --------------------------------------------------------------------
    async def stop(self, *, request_id: str, user: str, channel: str) -> None:
        """The Stop button: handled here if this replica streams the answer, else signalled to all."""
        if request_id in self._live:
            await self.stop_local(request_id, user, channel)
            return
        try:
            await self.signals.publish_stop(request_id=request_id, user=user, channel=channel)
        except Exception:
            logger.warning("could not signal a stop for request %s", request_id, exc_info=True)

    async def stop_local(self, request_id: str, user: str, channel: str) -> None:
        """Stop an answer streaming in this process: only the asker (or a workspace admin) may."""
        live = self._live.get(request_id)
        if live is None:
            return  # already finished, or streaming on another replica
        request, stopped = live
        if user != request.user:
            try:
                allowed = await self.gateway.is_admin(user=user)
            except SlackError:
                allowed = False
            if not allowed:
                text = f"Only <@{request.user}> (or a workspace admin) can stop this answer."
                try:
                    await self.gateway.post_ephemeral(
                        channel=channel, user=user, text=text, thread_ts=request.thread_ts
                    )
                except SlackError as err:
                    logger.info("could not explain the refused stop: %s", err.error)
                return
        logger.info("request %s stopped by %s", request_id, user)
        self._stopped_by[request_id] = user
        stopped.set()

    async def retry(
        self, *, request_id: str, user: str, channel: str, message_ts: str, blocks: list[dict[str, Any]]
    ) -> None:
        """The Retry button: queue the same question again, in the same thread (once per button,
        however often it is pressed before it disappears, and on whichever replica)."""
        try:
            if not await self.dedup.first_time(keys=[f"retry:{request_id}:{message_ts}"]):
                logger.info("request %s: Retry pressed again, ignored", request_id)
                return
        except StoreUnavailable:
            pass  # a second retry is better than none
        data = await self.store.recall_request(request_id=request_id)
        if data is None:
            await self._ephemeral(channel, user, "That question is too old to retry. Please ask it again.")
            return
        original = Request.from_dict(data)
        # Remove the Retry button (keep the answer's text), so it is pressed once.
        kept = [b for b in blocks if b.get("type") != "actions"]
        text = "\n\n".join(str((b.get("text") or {}).get("text", "")) for b in kept) or "_(retried)_"
        try:
            await self.budget.acquire(team_id=original.team_id, priority=Priority.FINAL)
            await self.gateway.update_message(channel=channel, ts=message_ts, text=text, blocks=kept or None)
        except SlackError as err:
            logger.info("could not remove the Retry button: %s", err.error)
        thread = original.thread_ts or message_ts
        source = Source.MENTION if original.source is Source.COMMAND else original.source
        again = dataclasses.replace(
            original,
            source=source,
            thread_ts=thread,
            response_url=None,
            event_id=None,
            id=new_request_id(),
        )
        logger.info("request %s retried as %s by %s", request_id, again.id, user)
        await self.submit(again, dedup=False)

    async def _ephemeral(self, channel: str, user: str, text: str) -> None:
        try:
            await self.gateway.post_ephemeral(channel=channel, user=user, text=text)
        except SlackError as err:
            logger.info("could not post an ephemeral message: %s", err.error)

    # -- queue positions ---------------------------------------------------------------------------
    async def job_finished(self, job: Job) -> None:
        """Worker hook: the line of the job's channel moved."""
        self._shown.pop(job.id, None)
        self.line_moved_in(job.request.queue_key)

    def line_moved_in(self, queue_key: str) -> None:
        """Update the "Queued: N ahead" placeholders of a channel, in one tracked task per channel."""
        task = self._notices.get(queue_key)
        if task is not None and not task.done():
            self._notices_dirty.add(queue_key)
            return
        task = asyncio.create_task(self._update_positions(queue_key), name=f"positions-{queue_key}")
        self._notices[queue_key] = task
        task.add_done_callback(self._notice_done)

    def _notice_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.warning("updating queue positions failed", exc_info=task.exception())

    async def _update_positions(self, queue_key: str) -> None:
        while True:
            self._notices_dirty.discard(queue_key)
            waiting = await self.queue.waiting(queue_key=queue_key)
            in_progress = await self.queue.ahead(queue_key=queue_key) - len(waiting)
            for index, job in enumerate(waiting):
                position = in_progress + index
                text = queued_text(position)
                if (
                    job.placeholder_ts is None
                    or self._shown.get(job.id) == text
                    or not worth_a_notice(position)
                ):
                    continue
                if job.request.source is Source.COMMAND:
                    shown = f"{command_header(job.request)}\n\n{text}"
                else:
                    shown = text
                try:
                    await self.budget.acquire(team_id=job.request.team_id, priority=Priority.NOTICE)
                    # The wait for a notice slot can be long: only a job still waiting gets one, so a
                    # stale position never lands over an answer. The check and the edit hold the
                    # job's notice lock, which an answer starting here waits for (``_run``): the
                    # edit cannot arrive after the answer's first words.
                    async with self._notice_locks.setdefault(job.id, asyncio.Lock()):
                        still = await self.queue.waiting(queue_key=queue_key)
                        if job.id not in {j.id for j in still}:
                            continue
                        await self.gateway.update_message(
                            channel=job.request.channel, ts=job.placeholder_ts, text=shown, retry=False
                        )
                        self._shown[job.id] = text
                except SlackError as err:
                    logger.info("could not update a queue position: %s", err.error)
                finally:
                    lock = self._notice_locks.get(job.id)
                    if lock is not None and not lock.locked():
                        del self._notice_locks[job.id]
            if queue_key not in self._notices_dirty:
                return

    async def close(self, *, linger: float = 2.0) -> None:
        """Stop the side tasks: reactions still on their way (the ✅ or ⚠️ of the last answers) get
        ``linger`` seconds to land; queue notices are dropped at once."""
        notices = [t for t in self._notices.values() if not t.done()]
        for task in notices:
            task.cancel()
        if self._side_tasks:
            await asyncio.wait(list(self._side_tasks), timeout=linger)
        tasks = notices + list(self._side_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _post_command_placeholder(self, request: Request, status: str) -> str | None:
        try:
            return await self._post_placeholder(
                request, text=f"{command_header(request)}\n\n{status}", thread_ts=None
            )
        except CannotPost as err:
            if not request.response_url:
                raise
            logger.info("cannot post in %s (%s): answering through response_url", request.channel, err.error)
            await self.gateway.respond(
                response_url=request.response_url,
                payload={"response_type": "ephemeral", "text": "_Working on it…_"},
            )
            return None

    async def _tell_privately(self, request: Request, text: str) -> None:
        """Tell the asker alone: through the command's response_url, else an ephemeral message in
        the channel, else (a channel that refuses even that: archived, restricted) a direct message."""
        try:
            if request.response_url:
                await self.gateway.respond(
                    response_url=request.response_url, payload={"response_type": "ephemeral", "text": text}
                )
            else:
                await self.gateway.post_ephemeral(
                    channel=request.channel, user=request.user, text=text, thread_ts=request.thread_ts
                )
            return
        except SlackError as err:
            logger.warning("could not tell the user privately (request %s): %s", request.id, err.error)
        try:
            await self.gateway.post_message(channel=request.user, text=f"<#{request.channel}>: {text}")
        except SlackError as err:
            logger.warning("could not tell the user either (request %s): %s", request.id, err.error)

    # -- the job handler -------------------------------------------------------------------------
    def _thread_root(self, job: Job) -> str | None:
        if job.request.source is Source.COMMAND:
            return job.placeholder_ts
        return job.request.thread_ts

    async def _history(self, job: Job) -> list[Turn]:
        request = job.request
        root = self._thread_root(job)
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
            messages = await self.gateway.thread_messages(channel=request.channel, thread_ts=root)
        except SlackError as err:
            logger.warning("could not read thread %s: %s", root, err.error)
            return []
        turns = self._turns_from_messages(messages, before=request.ts, skip={job.placeholder_ts})
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

    def _turns_from_messages(
        self, messages: list[dict[str, Any]], *, before: str, skip: set[str | None]
    ) -> list[Turn]:
        turns: list[Turn] = []
        for message in messages:
            ts = str(message.get("ts", ""))
            if ts in skip or float(ts or 0) >= float(before):
                continue
            text = str(message.get("text") or "")
            if message.get("user") == self.bot_user_id and self.bot_user_id is not None:
                turns.append(Turn(role="assistant", text=text, ts=ts))
            elif not is_from_bot(message, None) and message.get("user"):
                text = strip_bot_mention(text, self.bot_user_id)
                turns.append(Turn(role="user", text=text, user=str(message["user"]), ts=ts))
        return turns

    async def run(self, job: Job) -> None:
        """The queue's job handler. Never raises for an ordinary failure: the user is told."""
        with logs.bound_request(job.request.id):
            self._answer_started(job)
            outcome: str | None = None  # None: handed back to the queue (cancelled)
            try:
                outcome = await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                outcome = "failed"
                logger.exception("internal error (request %s)", job.request.id)
                await self._replace_placeholder(job, WARNING_PREFIX + user_message(err, job.request.id))
                self._react(
                    job.request, add=self.settings.reaction_failed, remove=self.settings.reaction_working
                )
            finally:
                stats = self._stats.pop(job.request.id, None)
                self.metrics.answer_finished(outcome)
            if stats is not None:
                logger.info(
                    "request %s finished: %s (%d prompt + %d completion tokens%s)",
                    job.request.id,
                    outcome,
                    stats.prompt_tokens,
                    stats.completion_tokens,
                    ", estimated" if stats.estimated else "",
                )

    def _answer_started(self, job: Job) -> AnswerStats:
        """Record that the job left the queue; returns the tracker of its answer's timing and tokens."""
        now = time.time()
        if not job.resumed:  # a resumed job left the queue once already
            self.metrics.started(wait_seconds=now - job.enqueued_at if job.enqueued_at > 0 else None)
        self.metrics.answer_started()
        stats = AnswerStats(self.metrics, origin=job.enqueued_at if job.enqueued_at > 0 else now)
        self._stats[job.request.id] = stats
        return stats

    async def _run(self, job: Job) -> str:
        """Answer the job; returns the outcome ("ok", "failed" or "stopped")."""
        request = job.request
        question = Turn(role="user", text=request.text, user=request.user, ts=request.ts)
        prompt = build_prompt(
            system_prompt=self.settings.system_prompt,
            history=await self._history(job),
            question=question,
            budget_tokens=self.settings.context_tokens,
        )
        notes = []
        if request.has_files:
            notes.append(FILES_NOT_READ_NOTE)
        if prompt.question_truncated:
            notes.append("_(Your message was very long; I read only its beginning.)_")
        if job.via_response_url:
            return await self._answer_via_response_url(job, prompt, notes)
        assert job.placeholder_ts is not None
        notice = self._notice_locks.get(job.id)
        if notice is not None:
            async with notice:  # a queue notice being edited lands before the answer's first edit
                pass
        prefix = [command_header(request)] if request.source is Source.COMMAND else []
        streamer = Streamer(
            gateway=self.gateway,
            budget=self.budget,
            team_id=request.team_id,
            channel=request.channel,
            placeholder_ts=job.placeholder_ts,
            thread_ts=self._thread_root(job),
            interval=self.settings.edit_interval_seconds,
            prefix="\n\n".join(prefix + notes),
            final_deadline=self.settings.final_edit_deadline_seconds,
            request_id=request.id,
            stop_button=True,
            # What the placeholder shows: this replica's latest notice, else what it was posted
            # with (another replica may have moved its notice since: either way not "Thinking").
            shown_text="" if job.resumed else self._shown.pop(job.id, None) or job.posted_text,
            continuations=await self._earlier_continuations(job) if job.resumed else None,
            on_rate_limited=self.metrics.slack_ratelimited,
        )
        if job.resumed:
            streamer.set_status(RESUMING_TEXT)
        try:
            await self.store.remember_request(request_id=request.id, data=request.to_dict())
        except StoreUnavailable:
            logger.warning("could not keep request %s for a retry", request.id)
        # The answer's message is known now: a vote on it counts even before the answer ends.
        await self._remember_answer(request, [job.placeholder_ts])
        stopped = asyncio.Event()
        self._live[request.id] = (request, stopped)
        try:
            async with streamer:
                note, failed = await self._generate_or_stop(prompt, streamer, request, stopped)
                await self._count_tokens(request)
                await streamer.finish(note, button="retry" if failed else None)
        finally:
            self._live.pop(request.id, None)
            self._stopped_by.pop(request.id, None)
        await self._remember(job, question, streamer.text)
        await self._remember_answer(request, [ts for ts in streamer.ts if ts != job.placeholder_ts])
        self.metrics.edits(streamer.edits)
        if self.settings.log_message_text:
            logger.info("answer: %s", streamer.text)
        done = self.settings.reaction_failed if failed else self.settings.reaction_done
        self._react(request, add=done, remove=self.settings.reaction_working)
        if failed:
            return "failed"
        if note is not None and note.startswith(STOPPED_PREFIX):
            return "stopped"
        stats = self._stats.get(request.id)
        if stats is not None:
            stats.final_text()
        return "ok"

    async def _earlier_continuations(self, job: Job) -> list[str]:
        """A resumed answer: the continuation messages its earlier worker posted (pieces 1, 2, …),
        so they are edited or removed instead of left in the thread beside a second copy."""
        assert job.placeholder_ts is not None
        root = self._thread_root(job) or job.placeholder_ts
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

    async def _generate_or_stop(
        self, prompt: Prompt, streamer: Streamer, request: Request, stopped: asyncio.Event
    ) -> tuple[str | None, bool]:
        """Generate, unless the Stop button is pressed first: then cancel the generation at once and
        keep what was written. Returns (note for the user, whether the answer failed)."""
        generation = asyncio.create_task(
            self._generate(prompt, streamer, request), name=f"generate-{request.id}"
        )
        stop = asyncio.create_task(stopped.wait(), name=f"stop-{request.id}")
        try:
            await asyncio.wait({generation, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if generation.done():
            note = generation.result()
            return note, note is not None and not note.startswith(STOPPED_PREFIX)
        generation.cancel()
        await asyncio.gather(generation, return_exceptions=True)
        who = self._stopped_by.get(request.id)
        return f"{STOPPED_PREFIX} by <@{who}>._" if who else f"{STOPPED_PREFIX}._", False

    async def _generate(self, prompt: Prompt, streamer: AnswerSink, request: Request) -> str | None:
        """Stream the answer into ``streamer``; returns a note for the user when it failed."""
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                try:
                    await self._stream_with_retries(prompt, streamer, self._stats.get(request.id))
                except ContextTooLong:
                    shorter = drop_oldest(prompt)
                    if shorter is None:
                        raise
                    logger.info(
                        "context too long (request %s): retrying with %d fewer turns",
                        request.id,
                        shorter.dropped_turns - prompt.dropped_turns,
                    )
                    streamer.replace("")
                    await self._stream_with_retries(shorter, streamer, self._stats.get(request.id))
                if not streamer.text.strip():
                    raise EmptyAnswer()  # else the final edit would show the placeholder forever
        except TimeoutError as err:
            self.metrics.model_error(err)
            return WARNING_PREFIX + user_message(
                ModelTimeout("answer", self.settings.timeout_seconds), request.id
            )
        except ModelError as err:
            logger.warning("model error (request %s): %s", request.id, err)
            return WARNING_PREFIX + user_message(err, request.id)
        except Exception as err:
            logger.exception("internal error (request %s)", request.id)
            return WARNING_PREFIX + user_message(err, request.id)
        return None

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > 0:
            return min(float(retry_after), 60.0)
        base = self.settings.retry_base_seconds  # the jitter scales with it too (tests run in ms)
        backoff = wait_exponential_jitter(multiplier=base, jitter=base, max=30.0)
        return float(backoff(state))

    async def _consume(self, prompt: Prompt, sink: Callable[[str], None], stats: AnswerStats | None) -> None:
        """One model call: its deltas go to ``sink``; its tokens and errors are counted."""
        stream = self.llm.stream(prompt.messages)
        produced = 0
        try:
            async for delta in stream:
                if stats is not None:
                    stats.token()
                produced += len(delta)
                sink(delta)
        except ModelError as err:
            self.metrics.model_error(err)
            raise
        finally:
            if stats is not None:
                stats.usage(stream.usage, prompt.messages, produced)

    async def _stream_with_retries(
        self, prompt: Prompt, streamer: AnswerSink, stats: AnswerStats | None = None
    ) -> None:
        attempts = self.settings.max_attempts

        def before_sleep(state: RetryCallState) -> None:
            streamer.set_status(f"_retrying, {state.attempt_number + 1} of {attempts}…_")

        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    streamer.replace("")  # a retried stream replaces the partial text, never appends
                await self._consume(prompt, streamer.append, stats)
                streamer.set_status(None)

    async def _answer_via_response_url(self, job: Job, prompt: Prompt, notes: list[str]) -> str:
        request = job.request
        assert request.response_url is not None
        collected = Collected()
        # The same path as a streamed answer: retries, the context-length trim, the timeouts.
        note = await self._generate(prompt, collected, request)
        await self._count_tokens(request)
        answer = to_mrkdwn(collected.text)
        text = "\n\n".join(p for p in (command_header(request), *notes, answer, note, INVITE_HINT) if p)
        try:
            await self.gateway.respond(
                response_url=request.response_url, payload={"response_type": "ephemeral", "text": text}
            )
        except SlackError as err:
            logger.error("could not answer through response_url (request %s): %s", request.id, err.error)
        else:
            stats = self._stats.get(request.id)
            if note is None and stats is not None:
                stats.final_text()  # the whole answer is in Slack: as for a streamed answer's final edit
        return "failed" if note else "ok"

    async def _remember(self, job: Job, question: Turn, answer: str) -> None:
        root = self._thread_root(job)
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
