"""The native view's helpers: which workspaces lack the AI methods (``Availability``), the thread's
status line (``StatusLine``), and the edit view an answer goes on with when it cannot be streamed
(``Fallback``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import SlackError
from bot.gateway import SlackGateway
from bot.texts import THINKING_TEXT
from bot.view.edit import EditView

logger = logging.getLogger(__name__)

# Errors that say the workspace (or the app's token) cannot use a method at all: GovSlack, a workspace
# that disabled AI features, an app without the scope. Remembered per workspace; edits instead.
UNAVAILABLE_ERRORS = frozenset(
    {
        "unknown_method",
        "not_allowed",
        "feature_not_enabled",
        "missing_scope",
        "access_denied",
        "not_allowed_token_type",
        "method_deprecated",
        "team_not_allowed",
    }
)
THINKING_STATUS = "is thinking…"


def plain_status(title: str | None) -> str:
    """A status line as the thread shows it: plain text (our texts are italic mrkdwn)."""
    return (title or THINKING_STATUS).strip().strip("_").strip() or THINKING_STATUS


class Availability:
    """Which workspaces cannot use native streams or the thread status (remembered for the process's
    life, logged once per workspace)."""

    def __init__(self) -> None:
        self._no_streams: set[str] = set()
        self._no_status: set[str] = set()

    @staticmethod
    def unavailable_error(error: str) -> bool:
        return error in UNAVAILABLE_ERRORS

    def streams(self, team_id: str) -> bool:
        return team_id not in self._no_streams

    def status(self, team_id: str) -> bool:
        return team_id not in self._no_status

    def lose_streams(self, team_id: str, error: str) -> None:
        if team_id not in self._no_streams:
            self._no_streams.add(team_id)
            logger.warning(
                "native streams are unavailable in workspace %s (%s): its answers are edited instead",
                team_id,
                error,
            )

    def lose_status(self, team_id: str, error: str) -> None:
        if team_id not in self._no_status:
            self._no_status.add(team_id)
            logger.warning("the thread status is unavailable in workspace %s (%s)", team_id, error)


class StatusLine:
    """The thread's status ("is thinking…", "retrying, 2 of 3…") while no words are shown. Slack
    clears it when the app replies in the thread (a stream starting); it is cleared here otherwise."""

    def __init__(self, gateway: SlackGateway, *, team_id: str, channel: str, thread_ts: str) -> None:
        self._gw = gateway
        self._team = team_id
        self._channel = channel
        self._thread = thread_ts
        self.wanted: str | None = THINKING_STATUS
        self._shown: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def want(self, status: str | None) -> None:
        self.wanted = status or THINKING_STATUS

    async def show(self, status: str, *, availability: Availability, timeout: float | None = None) -> bool:
        """Show ``status`` now (``""`` clears it); True when Slack took it."""
        if not availability.status(self._team):
            return False
        try:
            await self._gw.streams.set_status(
                channel=self._channel, thread_ts=self._thread, status=status, timeout=timeout
            )
        except TimeoutError:
            return False
        except SlackError as err:
            if availability.unavailable_error(err.error):
                availability.lose_status(self._team, err.error)
            else:
                logger.info("assistant.threads.setStatus failed: %s", err.error)
            return False
        self._shown = status or None
        return True

    async def sync(self, *, availability: Availability, timeout: float) -> None:
        if self.wanted is not None and self.wanted != self._shown:
            await self.show(self.wanted, availability=availability, timeout=timeout)

    def cleared_by_reply(self) -> None:
        """The app replied in the thread: Slack took the status away."""
        self._shown = None

    def clear_later(self) -> None:
        """Clear the status without holding up the answer (the call waits for the thread's pace)."""
        self.wanted = None
        if self._shown is not None:
            task = asyncio.create_task(self._clear(), name=f"status-{self._channel}-{self._thread}")
            self._tasks.add(task)

    async def _clear(self) -> None:
        try:
            await self._gw.streams.set_status(channel=self._channel, thread_ts=self._thread, status="")
            self._shown = None
        except SlackError as err:
            logger.info("could not clear the thread status: %s", err.error)

    async def close(self) -> None:
        """The answer is over: a status still showing is cleared."""
        self.wanted = None
        if self._shown is not None and not self._tasks:
            self.clear_later()
        tasks, self._tasks = self._tasks, set()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                logger.warning("clearing the thread status failed", exc_info=result)


@dataclass
class Fallback:
    """Builds the edit view an answer goes on with: in its placeholder (``shown_text`` is what that
    shows) or, when it is gone, in a new message in the thread."""

    gateway: SlackGateway
    team_id: str
    channel: str
    thread_ts: str
    request_id: str
    prefix: str
    shown_text: str | None
    make: Callable[..., EditView]  # EditView with the settings' interval and deadline

    async def open(self, placeholder_ts: str | None, *, continuing: bool) -> EditView:
        """An edit view (not entered yet). ``continuing``: after streamed messages, so without the
        answer's prefix (it was shown in the first message)."""
        shown = self.shown_text
        if placeholder_ts is None:
            placeholder_ts = await self.gateway.posts.post_answer(
                channel=self.channel,
                text=THINKING_TEXT,
                thread_ts=self.thread_ts,
                request_id=self.request_id,
                team_id=self.team_id,
            )
            shown = THINKING_TEXT
        return self.make(
            placeholder_ts=placeholder_ts, prefix="" if continuing else self.prefix, shown_text=shown
        )


async def started_stream(
    gateway: SlackGateway, team_id: str, channel: str, thread_ts: str, text: str
) -> str | None:
    """The stream a start whose answer was lost began, if the thread shows one: the bot's live
    stream with exactly ``text`` (a thread's answers run one at a time)."""
    try:
        messages = await gateway.thread_messages(channel=channel, thread_ts=thread_ts, team_id=team_id)
    except SlackError:
        return None
    for message in reversed(messages):
        if message.get("bot_id") and message.get("streaming_state") == "in_progress":
            return str(message["ts"]) if message.get("text") == text else None
    return None


async def remove_streams(
    gateway: SlackGateway, *, team_id: str, channel: str, streams: list[str], live: dict[str, str | None]
) -> None:
    """Delete streamed messages (an answer replaced, or resumed after its replica died); the live ones
    (``live``: ts -> the reservation of their stop) are stopped first."""
    for ts in streams:
        try:
            if ts in live:
                with contextlib.suppress(SlackError):
                    await gateway.streams.stop(team_id=team_id, channel=channel, ts=ts, answer_id=live[ts])
            await gateway.delete_message(channel=channel, ts=ts)
        except SlackError as err:
            logger.warning("could not remove a streamed message: %s", err.error)
