"""The placeholder: the message that shows a question was heard, and becomes its answer.

A question is queued (durably, with Redis) *before* anything is posted, so a replica that dies at any
moment after the ack loses nothing. Then two parties may post its placeholder: the intake, right
after the enqueue, and the worker that claims the job, if it finds none (the intake's replica died,
or is still waiting for the channel's posting pace). They agree through one claim per request in the
dedup store (set if absent): whoever claims first owns the placeholder; a loser deletes its own post
and adopts the owner's. The claim may also say the answer goes through a command's response_url, or
that the bot cannot post in the channel.

A loser that dies between its post and its claim cannot delete its post. Two cases, both settled by
reading the thread once (a thread only: a command's placeholder is top-level and not looked for): a
resumed job (its earlier worker may have died so) at its start, and a job whose worker won the claim
with a post of its own (an intake elsewhere may have posted meanwhile and died) once its answer ended,
in a task of its own: by then any live intake has settled its own post.
"""

from __future__ import annotations

import asyncio
import logging

from bot.errors import CannotPost, SlackError
from bot.gateway import SlackGateway
from bot.gateway.errors import piece_of
from bot.jobs import Job, Source
from bot.store.base import Deduplicator, StoreUnavailable
from bot.tasks import KeptTasks
from bot.texts import QUEUED_PREFIX, RESUMING_TEXT, THINKING_TEXT, WORKING_ON_IT, command_header

logger = logging.getLogger(__name__)

VIA_RESPONSE_URL = "response_url"
CANNOT_POST = "cannot_post"


def _key(job: Job) -> str:
    return f"placeholder:{job.id}"


def _is_placeholder_text(text: str) -> bool:
    """What a placeholder shows before its answer: the thinking line or a queue notice."""
    return text in (THINKING_TEXT, RESUMING_TEXT) or text.startswith(QUEUED_PREFIX)


class Placeholders:
    def __init__(self, *, gateway: SlackGateway, claims: Deduplicator) -> None:
        self.gateway = gateway
        self.claims = claims
        self._posting: dict[str, asyncio.Future[str | None]] = {}  # job id -> this replica's post
        self._known: dict[str, str] = {}  # job id -> its placeholder (posted or adopted here)
        self._unsettled: set[str] = set()  # jobs whose worker owns a post of its own: see settle()
        self._settling = KeptTasks(logger)

    def _text(self, job: Job, status: str) -> str:
        return (
            f"{command_header(job.request)}\n\n{status}" if job.request.source is Source.COMMAND else status
        )

    async def post(self, job: Job, status: str) -> str | None:
        """Post the job's placeholder showing ``status``; returns what owns it (a ts, or one of
        ``VIA_RESPONSE_URL``/``CANNOT_POST``), or None when Slack failed (the worker will try)."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._posting[job.id] = future
        try:
            owner = await self._post(job, status)
            future.set_result(owner)
            return owner
        except BaseException:
            future.set_result(None)
            raise
        finally:
            self._posting.pop(job.id, None)

    async def _post(self, job: Job, status: str, *, by_worker: bool = False) -> str | None:
        request = job.request
        thread = None if request.source is Source.COMMAND else request.thread_ts
        try:
            ts = await self.gateway.posts.post_answer(
                channel=request.channel,
                text=self._text(job, status),
                thread_ts=thread,
                request_id=request.id,
                team_id=request.team_id,
            )
        except CannotPost as err:
            verdict = (
                VIA_RESPONSE_URL if request.source is Source.COMMAND and request.response_url else CANNOT_POST
            )
            logger.info("cannot post in %s (%s): %s", request.channel, err.error, verdict)
            owner = await self._claim(job, verdict)
            if owner == VIA_RESPONSE_URL == verdict and request.response_url:
                try:
                    await self.gateway.respond(
                        response_url=request.response_url,
                        payload={"response_type": "ephemeral", "text": WORKING_ON_IT},
                    )
                except SlackError as failed:
                    logger.warning("could not post to response_url: %s", failed.error)
            return owner
        except SlackError as err:
            logger.warning("could not post a placeholder yet (request %s): %s", request.id, err.error)
            return None
        owner = await self._claim(job, ts)
        if owner != ts:
            # Another replica's worker started the answer in a placeholder of its own meanwhile.
            await self._delete(request.channel, ts)
        elif by_worker:
            self._unsettled.add(job.id)
        return owner

    async def _claim(self, job: Job, value: str) -> str:
        try:
            owner = await self.claims.claim(key=_key(job), value=value)
        except StoreUnavailable:
            owner = value  # without the store, this replica's post stands
        if owner not in (VIA_RESPONSE_URL, CANNOT_POST):
            self._known[job.id] = owner
        return owner

    async def _delete(self, channel: str, ts: str) -> None:
        try:
            await self.gateway.delete_message(channel=channel, ts=ts)
        except SlackError as err:
            logger.warning("could not delete a second placeholder: %s", err.error)

    async def known(self, job: Job) -> str | None:
        """The job's placeholder if one is posted (for queue notices), without posting."""
        if job.placeholder_ts is not None:
            return job.placeholder_ts
        if job.id in self._known:
            return self._known[job.id]
        try:
            owner = await self.claims.claim(key=_key(job), value="")
        except StoreUnavailable:
            return None
        return owner if owner and owner not in (VIA_RESPONSE_URL, CANNOT_POST) else None

    async def adopt(self, job: Job, status: str) -> str | None:
        """At the start of the answer: the job's placeholder (posted by the intake, here or on
        another replica, or by an earlier worker), else a new one showing ``status``. Returns a ts,
        ``VIA_RESPONSE_URL`` or ``CANNOT_POST``; raises ``SlackError`` when Slack keeps failing.

        A resumed job's worker died: if it died as a loser of the claim, before deleting its own
        post, that post is still there. It is removed here, so the thread ends with one answer."""
        owner = await self._adopt(job, status)
        if job.resumed and owner not in (None, VIA_RESPONSE_URL, CANNOT_POST):
            await self._remove_strays(job, str(owner))
        return owner

    async def _remove_strays(self, job: Job, owner: str) -> None:
        request = job.request
        if request.source is Source.COMMAND or request.thread_ts is None:
            return  # a command's placeholder is top-level: no thread to look in
        try:
            messages = await self.gateway.thread_messages(
                channel=request.channel, thread_ts=request.thread_ts, team_id=request.team_id, metadata=True
            )
        except SlackError as err:
            logger.warning("could not look for a second placeholder (request %s): %s", request.id, err.error)
            return
        for message in messages:
            ts = str(message.get("ts") or "")
            text = str(message.get("text") or "")
            if ts != owner and piece_of(message, request.id) == 0 and _is_placeholder_text(text):
                logger.info("removing a second placeholder %s of request %s", ts, request.id)
                await self._delete(request.channel, ts)

    async def _adopt(self, job: Job, status: str) -> str | None:
        if job.placeholder_ts is not None:
            return job.placeholder_ts
        posting = self._posting.get(job.id)
        if posting is not None:
            owner = await asyncio.shield(posting)
            if owner is not None:
                return owner
        if job.id in self._known:
            return self._known[job.id]
        try:
            held = await self.claims.claim(key=_key(job), value="")  # one read: a ts or a verdict
        except StoreUnavailable:
            held = ""
        if held:
            return held
        # A replica that died between its post and its claim left a message: adopt it.
        request = job.request
        thread = None if request.source is Source.COMMAND else request.thread_ts
        found = await self.gateway.posts.find_posted_anywhere(
            channel=request.channel, thread_ts=thread, request_id=request.id, team_id=request.team_id
        )
        if found is not None:
            return await self._claim(job, found)
        owner = await self._post(job, status, by_worker=True)
        if owner is None:
            raise SlackError("chat.postMessage", "placeholder_not_posted", transient=True)
        return owner

    def settle(self, job: Job) -> None:
        """When the answer has ended: if its worker answered in a placeholder of its own, remove (in a
        task of its own, after the job is done) a second one that an intake posted meanwhile and could
        not delete (it died before its claim)."""
        if job.id not in self._unsettled or job.placeholder_ts is None:
            return
        self._unsettled.discard(job.id)
        self._settling.start(self._remove_strays(job, job.placeholder_ts), name=f"settle-{job.request.id}")

    def forget(self, job: Job) -> None:
        self._known.pop(job.id, None)
        self._unsettled.discard(job.id)

    async def close(self, *, linger: float) -> None:
        """Clean-ups still reading a thread get ``linger`` seconds; the rest are dropped."""
        await self._settling.close(linger=linger)
