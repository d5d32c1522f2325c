"""The edit view: shows a growing answer in Slack by editing messages, within the edit budget.

Shaped like aiogram's ``ChatActionSender``: an async context manager that owns one flush task. The
producer calls ``append``/``replace`` as deltas arrive (cheap, no I/O); the flush task wakes on a
monotonic clock, renders the newest text, and edits the messages that changed. Hence:

- at most one edit in flight per answer, and each edit carries the newest text (an older text can
  never land over a newer one: there is no other sender);
- progress edits of one message are at least ``interval`` apart; the final edit goes out as soon as
  the stream ends (it does not wait for the interval);
- every edit takes a slot of the workspace's edit budget through the gateway's pacing: the first
  words, then progress, at lower priority than final texts; a 429 pauses the workspace's edits;
- when the rendered answer outgrows a message (3,900 characters) the message is finalised and the
  answer continues in a new message in the same thread (``bot.split``); the pieces together are the
  whole answer. Final edits are retried until ``final_deadline`` passes (waiting for a slot
  included); then that message is deleted and the rest of the answer is posted as new messages, in
  order, so the final text is never lost and no stale placeholder stays behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from bot.blocks import Button, answer_blocks
from bot.constants import MESSAGE_LIMIT
from bot.gateway import GaveWay, SlackGateway
from bot.ratelimit.base import Priority
from bot.texts import THINKING_TEXT
from bot.view import plan
from bot.view.shown import ShownMessages

logger = logging.getLogger(__name__)

MAX_PROGRESS_REPOSTS = 2  # a message refused as gone this often during the stream: no more progress


class EditView:
    def __init__(
        self,
        *,
        gateway: SlackGateway,
        team_id: str,
        channel: str,
        placeholder_ts: str,
        thread_ts: str | None,
        interval: float = 1.0,
        prefix: str = "",
        placeholder_text: str = THINKING_TEXT,
        shown_text: str | None = None,
        limit: int = MESSAGE_LIMIT,
        final_deadline: float = 120.0,
        request_id: str = "",
        stop_button: bool = False,
        continuations: list[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gateway = gateway
        self._team_id = team_id
        self._channel = channel
        # Continuations go into the answer's thread; a top-level answer (a command's) starts one.
        self._thread_ts = thread_ts or placeholder_ts
        self._interval = interval
        self._prefix = prefix
        self._placeholder = placeholder_text
        self._limit = limit
        self._final_deadline = final_deadline
        self._request_id = request_id
        self._live_id = f"{request_id}:{placeholder_ts}"
        self._stop_button = stop_button
        self._clock = clock

        self._raw = ""
        self._status: str | None = None
        self._note: str | None = None
        self._rendered_key: tuple[str, str | None, str | None, bool] | None = None
        self._rendered: list[str] = []
        self._shown = ShownMessages(
            gateway,
            channel=channel,
            thread_ts=self._thread_ts,
            request_id=request_id,
            team_id=team_id,
            ts=[placeholder_ts, *(continuations or [])],
            blocks_of=self._blocks,
            clock=clock,
        )
        self.ts = self._shown.ts  # the same lists: the messages and what each shows
        # What the placeholder shows now (a queue notice, or an earlier worker's partial answer).
        self.sent = self._shown.sent
        self.sent[0] = placeholder_text if shown_text is None else shown_text
        self._sent_buttons = self._shown.buttons
        self._final_button: Button | None = None
        self._shown_words = False
        self._last_cycle = float("-inf")
        self._pace = 0.0  # the progress interval the edit budget asks for (``Pacing.interval``)
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reposts = 0  # messages posted anew during the stream (a placeholder deleted meanwhile)
        self._progress_off = False

    # -- producer side: cheap, synchronous, never blocks -------------------------------------
    @property
    def text(self) -> str:
        """The raw answer so far (model Markdown)."""
        return self._raw

    @property
    def edits(self) -> int:
        return self._shown.edits

    @property
    def messages(self) -> list[str]:
        return list(self.ts)

    def append(self, delta: str) -> None:
        if delta:
            self._raw += delta
            self._changed.set()

    def replace(self, text: str) -> None:
        """Start over with ``text`` (a retried stream replaces, never appends)."""
        self._raw = text
        self._changed.set()

    def set_status(self, status: str | None) -> None:
        """A short status line shown under the partial answer (e.g. "retrying, 2 of 3…")."""
        self._status = status
        self._changed.set()

    def progress(self, title: str, *, done: bool) -> None:
        """On edited messages a step of work is the status line while it runs."""
        self.set_status(None if done else title)

    def finish(self, note: str | None = None, *, button: Button | None = None) -> None:
        """How the answer ends (sent by ``__aexit__``)."""
        self._note = note
        self._final_button = button

    def render_pieces(self, *, final: bool) -> list[str]:
        """The messages the answer needs now. Rendering is the costly part of a sync, so the pieces
        of the last state are kept and reused while nothing has changed."""
        key = (self._raw, self._status, self._note, final)
        if key != self._rendered_key:
            frame = plan.Frame(
                raw=self._raw,
                final=final,
                prefix=self._prefix,
                status=self._status,
                note=self._note,
                placeholder=self._placeholder,
            )
            self._rendered_key, self._rendered = key, plan.pieces(frame, limit=self._limit)
        return self._rendered

    def _button(self, index: int, pieces: list[str], *, final: bool) -> Button | None:
        return plan.button_of(
            index, len(pieces), final=final, final_button=self._final_button, stop=self._stop_button
        )

    def _blocks(self, text: str, button: Button | None) -> list[dict[str, Any]] | None:
        return None if button is None else answer_blocks(text, button=button, request_id=self._request_id)

    def _differs(self, index: int, pieces: list[str], *, final: bool) -> bool:
        if index >= len(self.ts):
            return True
        button = self._button(index, pieces, final=final) if index < len(pieces) else None
        return plan.differs(index, pieces, button, sent=self.sent, sent_buttons=self._sent_buttons)

    # -- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> EditView:
        # The budget keeps room for this answer's final edit while it streams.
        await self._gateway.pacing.live("chat.update", key=self._team_id, answer_id=self._live_id, alive=True)
        self._task = asyncio.create_task(self._run(), name=f"view-{self._request_id}")
        return self

    async def _not_live(self) -> None:
        await self._gateway.pacing.live(
            "chat.update", key=self._team_id, answer_id=self._live_id, alive=False
        )

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            await self._cancel()
            return
        # Send the final text (with the note under it, and the button on the last message, if any)
        # and wait until it is in Slack; a progress edit waiting for a slot gives way to it.
        self._closing.set()
        self._changed.set()
        try:
            if self._task is not None:
                await asyncio.shield(self._task)
        finally:
            await self._not_live()

    async def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.shield(self._not_live())

    # -- the flush task -----------------------------------------------------------------------
    async def _run(self) -> None:
        if self.sent[0] != self._placeholder and not self._raw and self._status is None:
            # The placeholder shows a queue notice: the answer's turn has come. Give the first words
            # one interval to replace the notice (no extra edit when the model is quick); if none
            # come, show the thinking indicator, so nobody reads "Queued" while the answer is written.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._changed.wait()
            self._changed.set()
        while True:
            await self._changed.wait()
            if not self._closing.is_set():
                interval = max(self._interval, self._pace)  # _pace stays 0 until words are shown
                delay = self._last_cycle + interval - self._clock()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):  # no task per wait: this runs every edit
                            await self._closing.wait()
            self._changed.clear()
            final = self._closing.is_set()
            if self._progress_off and not final:
                continue
            self._last_cycle = self._clock()
            done = await self._sync(final=final)
            if final and done:
                return
            if self._shown_words:
                # Progress is paced, not spent: the workspace's progress share, spread evenly over
                # its live answers (a lone answer is never starved for the rest of the window).
                self._pace = await self._gateway.pacing.interval("chat.update", key=self._team_id)

    async def _acquire(
        self, priority: Priority, *, interruptible: bool, timeout: float | None = None
    ) -> bool:
        """Take an edit slot. A progress edit gives up (returns False) when the stream ends while
        it waits, so the final text is sent at final priority instead."""
        try:
            await self._gateway.edit_slot(
                team_id=self._team_id,
                priority=priority,
                answer_id=None if interruptible else self._live_id,
                give_way=self._closing if interruptible else None,
                timeout=timeout,
            )
        except GaveWay:
            return False
        return True

    async def _sync(self, *, final: bool) -> bool:
        """Bring Slack up to date with the newest text. Returns True when every message shows it.
        Outside the final sync, each message is edited at most once."""
        deadline = self._clock() + self._final_deadline
        backoff = 0.25
        edited: set[int] = set()
        while True:
            pieces = self.render_pieces(final=final)
            todo = next(
                (
                    i
                    for i in range(max(len(pieces), len(self.ts)))
                    if i not in edited and self._differs(i, pieces, final=final)
                ),
                None,
            )
            if todo is None:
                return not final or len(pieces) >= len(self.ts)
            if todo >= len(self.ts):
                await self._shown.post(todo, pieces[todo], self._button(todo, pieces, final=final))
                continue
            if todo >= len(pieces):
                # A replaced (retried) answer became shorter: remove its leftover messages.
                if final:
                    await self._shown.delete_from(len(pieces))
                    return True
                edited.add(todo)
                continue
            settled = todo < len(pieces) - 1  # a message that will not change any more
            if final or settled:
                priority = Priority.FINAL
            elif not self._shown_words:
                # Until words show (the thinking indicator replacing a queue notice included), an
                # edit is a first-words edit, so an answer never waits behind others' progress.
                priority = Priority.FIRST_WORDS
            else:
                priority = Priority.PROGRESS
            if final:
                # The final text has a hard deadline: past it (a long pause or a full window), the
                # message is given up and the rest of the answer is posted anew.
                try:
                    await self._acquire(
                        priority, interruptible=False, timeout=max(0.0, deadline - self._clock())
                    )
                except TimeoutError:
                    logger.warning("no edit slot before the final deadline (request %s)", self._request_id)
                    await self._shown.repost_from(todo)
                    continue
            elif not await self._acquire(priority, interruptible=True):
                # Outside the final sync every wait gives way to the end of the stream (a settled
                # piece included: the final sync sends it, under the final deadline).
                return False
            newest = self.render_pieces(final=final)  # the text may have grown while we waited
            if todo >= len(newest):
                continue
            button = self._button(todo, newest, final=final)
            ok = await self._shown.edit(
                todo,
                newest[todo],
                button,
                team_id=self._team_id,
                deadline=deadline if final or settled else None,
            )
            if ok is None:  # the message is gone or would not take the final text: post anew
                if not final and self._reposts >= MAX_PROGRESS_REPOSTS:
                    # Slack keeps refusing the new messages too: stop showing progress (the
                    # final text is still posted, once the answer is complete).
                    self._progress_off = True
                    return False
                self._reposts += 0 if final else 1
                await self._shown.repost_from(todo)
                edited = {i for i in edited if i < todo}
                continue
            if not final:
                edited.add(todo)
            if ok:
                backoff = 0.25
                self._shown_words = self._shown_words or bool(self._raw)
            elif final:
                await asyncio.sleep(backoff)  # backoff between retries of a final edit
                backoff = min(backoff * 2, 8.0)
