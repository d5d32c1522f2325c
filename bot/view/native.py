"""The native view: an answer streamed with Slack's own streams (``chat.startStream`` /
``appendStream`` / ``stopStream``), its Markdown rendered by Slack. One flush task, as in the edit view:

- while no words have come (queue turn, model latency, retries) the thread shows a status
  (``assistant.threads.setStatus``); a placeholder showing a queue notice is removed then, the
  "Thinking…" one as the stream starts (Slack clears the status with the first words);
- a stream starts with the first words (never a placeholder line: a stream is append-only) and grows
  by appends at least ``interval`` apart, each taking a slot of the workspace's append budget, the
  newest text coalesced; retries show as ``task_update`` cards;
- a message ends before Slack's limits (``rollover_chars``, ``rollover_seconds``) at a safe cut
  (``native_text``) and the answer continues in a new stream; a stream Slack ended early
  (``message_not_in_streaming_state``) keeps what it shows and the answer continues after it; a last
  message Slack ended is finished with ``chat.update``: the thread ends with exactly the answer;
- the last stop carries the rest of the text, the note, and Slack's feedback buttons (or Retry);
- where a stream cannot start (the methods unavailable, ``missing_recipient_*``, any error), the
  answer goes on by edits (``edit.EditView``) in the placeholder or a new message: never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

from bot.blocks import Button
from bot.gateway import SlackGateway
from bot.view.edit import EditView
from bot.view.native_parts import Availability, Fallback, StatusLine, plain_status
from bot.view.native_text import NativeText
from bot.view.native_writer import GoOnByEdits, StreamWriter, card

logger = logging.getLogger(__name__)


class NativeView:
    def __init__(
        self,
        *,
        gateway: SlackGateway,
        team_id: str,
        channel: str,
        thread_ts: str,
        request_id: str,
        recipient: tuple[str, str] | None,
        placeholder_ts: str,
        placeholder_is_notice: bool,
        availability: Availability,
        fallback: Fallback,
        prefix: str = "",
        interval: float = 1.0,
        rollover_chars: int = 11_000,
        rollover_seconds: float = 240.0,
        reserved: str | None = None,
        on_stream: Callable[[str, Callable[[str], None]], None] = lambda ts, refused: None,
        remember: Callable[[int, str], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gw = gateway
        self._team = team_id
        self._request_id = request_id
        self._placeholder_is_notice = placeholder_is_notice
        self._availability = availability
        self._fallback = fallback
        self._interval = interval
        self._reserved = reserved
        self._clock = clock
        self._text = NativeText(prefix=prefix, limit=rollover_chars)
        self._status = StatusLine(gateway, team_id=team_id, channel=channel, thread_ts=thread_ts)
        self._w = StreamWriter(
            gateway=gateway,
            team_id=team_id,
            channel=channel,
            thread_ts=thread_ts,
            request_id=request_id,
            recipient=recipient,
            placeholder_ts=placeholder_ts,
            availability=availability,
            status=self._status,
            text=self._text,
            interval=interval,
            rollover_seconds=rollover_seconds,
            reserved=reserved,
            on_stream=self._started,
            clock=clock,
        )
        self._on_stream = on_stream  # told of every stream (Slack's stop control names them)
        self._remember = remember  # keeps every stream's ts (an answer resumed elsewhere removes them)
        self._started_count = 0
        self._task: asyncio.Task[None] | None = None
        self._edit: EditView | None = None  # the answer went on by edits
        self._forward_out = False  # the edit view shows ``out`` after the streams (not the raw answer)

    # -- producer side: cheap, synchronous -----------------------------------------------------
    @property
    def text(self) -> str:
        return self._text.raw

    @property
    def messages(self) -> list[str]:
        edited = self._edit.messages if self._edit is not None else []
        return [s.ts for s in self._w.streams] + edited

    @property
    def edits(self) -> int:
        return self._w.updates + (self._edit.edits if self._edit is not None else 0)

    @property
    def streamed(self) -> int:
        """Native streams this answer used."""
        return len(self._w.streams)

    def append(self, delta: str) -> None:
        if not delta:
            return
        self._text.raw += delta
        if self._edit is not None:
            self._forward(final=False, delta=delta)
        self._w.changed.set()

    def replace(self, text: str) -> None:
        """A retried answer replaces the text: the messages showing the old one are removed."""
        w = self._w
        w.doomed += w.streams
        w.streams, w.cur, w.cards = [], None, []
        self._text.reset(text)
        if w.card is not None:  # the retry it showed is the status again until words come
            self._status.want(w.card)
            w.card = None
        if self._edit is not None:
            self._forward_out = False
            self._edit.replace(text)
        w.changed.set()

    def set_status(self, status: str | None) -> None:
        self.progress(status or "", done=status is None)

    def progress(self, title: str, *, done: bool) -> None:
        """Before the stream: the thread's status. While it streams: a ``task_update`` card."""
        w = self._w
        if self._edit is not None:
            self._edit.progress(title, done=done)
            return
        if w.cur is None:
            self._status.want(None if done else plain_status(title))
        elif done and w.card is not None:
            w.cards.append(card(w.card, "complete"))
            w.card = None
        elif not done and title:
            w.card = plain_status(title)
            w.cards.append(card(w.card, "in_progress"))
        w.changed.set()

    def finish(self, note: str | None = None, *, button: Button | None = None) -> None:
        self._w.note, self._w.button = note, button

    def _forward(self, *, final: bool, delta: str = "") -> None:
        assert self._edit is not None
        if not self._forward_out:
            self._edit.append(delta)
            return
        added = self._text.advance(final=final)
        if added:
            self._edit.append(added)

    async def _started(self, ts: str) -> None:
        self._on_stream(ts, self._w.stop_refused)
        if self._remember is not None:
            await self._remember(self._started_count, ts)
        self._started_count += 1

    # -- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> NativeView:
        self._task = asyncio.create_task(self._run(), name=f"native-{self._request_id}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            await self._cancel()
            return
        self._w.closing.set()
        self._w.changed.set()
        try:
            if self._task is not None:
                await asyncio.shield(self._task)
            if self._edit is not None:
                if self._forward_out:
                    self._forward(final=True)
                self._edit.finish(self._w.note, button=self._w.button)
                await self._edit.__aexit__(None, None, None)
        finally:
            await self._w.bury()
            await self._status.close()
            await self._release()

    async def _cancel(self) -> None:
        """The job is handed back (shutdown): none of this answer stays to be shown twice."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._edit is not None:
            await self._edit.__aexit__(asyncio.CancelledError, None, None)
        self._w.doomed += self._w.streams
        self._w.streams = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await asyncio.shield(self._w.bury())
        await asyncio.shield(self._status.close())
        await asyncio.shield(self._release())

    async def _release(self) -> None:
        """Give back a reserved start or stop that was not used."""
        if self._reserved is not None:
            for method in ("chat.startStream", "chat.stopStream"):
                await self._gw.pacing.live(method, key=self._team, answer_id=self._reserved, alive=False)

    # -- the flush task -----------------------------------------------------------------------
    async def _run(self) -> None:
        w = self._w
        try:
            shown = await self._status.show(
                plain_status(None), availability=self._availability, timeout=self._interval
            )
            if shown and self._placeholder_is_notice:
                # A queue notice would say "Queued" while the answer is written: the status says it.
                await w.drop_placeholder()
            while True:
                await w.changed.wait()
                if not w.closing.is_set() and w.cur is not None:
                    delay = w.last_send + self._interval - self._clock()
                    if delay > 0:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(delay):
                                await w.closing.wait()
                w.changed.clear()
                final = w.closing.is_set()
                await w.cycle(final=final)
                if final:
                    return
        except GoOnByEdits as why:
            await self._go_on_by_edits(str(why))

    async def _go_on_by_edits(self, why: str) -> None:
        """The rest of the answer is shown by edits: in the placeholder when nothing was streamed,
        else in a new message after the streamed ones."""
        logger.info("request %s goes on by edits (%s)", self._request_id, why)
        w = self._w
        w.cur = None
        continuing = bool(w.streams)
        placeholder, w.placeholder = (None if continuing else w.placeholder), None
        self._edit = await self._fallback.open(placeholder, continuing=continuing)
        self._status.clear_later()
        if continuing:
            self._forward_out = True
            rest = self._text.rest()
            self._text.placed, self._text.head = len(self._text.out), ""
            self._edit.append(rest)
            self._forward(final=False)
        else:
            self._edit.replace(self._text.raw)
        await self._edit.__aenter__()
