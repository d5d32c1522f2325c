"""Short messages that are not answers: replies in a thread, private notes to the asker, and a note
put in place of a placeholder (a refusal, a failure, a restart)."""

from __future__ import annotations

import logging

from bot.errors import SlackError
from bot.gateway import SlackGateway
from bot.history import thread_root
from bot.jobs import Job, Request, Source
from bot.texts import command_header, in_channel

logger = logging.getLogger(__name__)


class Replies:
    def __init__(self, *, gateway: SlackGateway) -> None:
        self.gateway = gateway

    async def reply(self, request: Request, text: str) -> None:
        """A short reply in the request's thread (or privately for a command or a shortcut, which no
        one else saw)."""
        if request.source in (Source.COMMAND, Source.SUMMARY):
            await self.tell_privately(request, text)
            return
        try:
            await self.gateway.post_message(channel=request.channel, text=text, thread_ts=request.thread_ts)
        except SlackError as err:
            logger.warning("could not reply (request %s): %s", request.id, err.error)

    async def tell_privately(self, request: Request, text: str) -> None:
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
            await self.gateway.post_message(channel=request.user, text=in_channel(request.channel, text))
        except SlackError as err:
            logger.warning("could not tell the user either (request %s): %s", request.id, err.error)

    async def ephemeral(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None:
        try:
            await self.gateway.post_ephemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
        except SlackError as err:
            logger.info("could not post an ephemeral message: %s", err.error)

    async def replace_placeholder(self, job: Job, text: str) -> None:
        """Show ``text`` (a refusal, a failure) instead of the placeholder, and nothing else: no
        answer, no button. A rate limit is waited out (the gateway paused the workspace's edits;
        server errors were already retried by the client's handlers: one retry layer); a placeholder
        that still will not take it (deleted, or Slack failing) gets ``text`` as a new message in its
        thread instead, so a failure is never left looking like "Thinking…"."""
        request = job.request
        if job.placeholder_ts is None:
            await self.tell_privately(request, text)
            return
        if request.source is Source.COMMAND:
            text = f"{command_header(request)}\n\n{text}"
        for _ in range(3):
            try:
                await self.gateway.update_message(
                    team_id=request.team_id, channel=request.channel, ts=job.placeholder_ts, text=text
                )
                return
            except SlackError as err:
                logger.warning("could not update the placeholder (request %s): %s", request.id, err.error)
                if err.retry_after is None:
                    break
        try:
            await self.gateway.post_message(
                channel=request.channel, text=text, thread_ts=thread_root(job) or job.placeholder_ts
            )
        except SlackError as err:
            logger.error("could not tell request %s's asker either: %s", request.id, err.error)
