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
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from bot.blocks import Button, actions_block, feedback_block
from bot.errors import SlackError
from bot.gateway import GaveWay, SlackGateway
from bot.gateway.streams import Chunk, markdown_chunk
from bot.view.edit import EditView
from bot.view.native_parts import Availability, Fallback, StatusLine, plain_status
from bot.view.native_text import NativeText, Piece

logger = logging.getLogger(__name__)

# A stream that will take no more: Slack ended it (its lifetime, the person's Stop) or it is full.
ENDED = frozenset({"message_not_in_streaming_state", "stopped_by_user", "msg_too_long", "message_not_found"})
STOP_ATTEMPTS = 3
NOTE_ROOM = 900  # a message finished by an edit may exceed the rollover size by a note


@dataclass
class _Stream:
    ts: str
    started: float
    answer_id: str | None = None  # the reservation its stop takes
    shown: str = ""  # the Markdown it shows
    end: int = 0  # where its text ends in ``NativeText.out``
    live: bool = True
    full: bool = False  # ends with the next stop
    finished: bool = False  # shows its final text (the note and buttons included, if last)


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gw = gateway
        self._team, self._channel, self._thread = team_id, channel, thread_ts
        self._request_id = request_id
        self._recipient = recipient
        self._placeholder: str | None = placeholder_ts
        self._placeholder_is_notice = placeholder_is_notice
        self._availability = availability
        self._fallback = fallback
        self._interval = interval
        self._rollover_seconds = rollover_seconds
        self._reserved = reserved  # a start and a stop kept for the first stream (Pacing.reserve)
        self._on_stream = on_stream
        self._clock = clock
        self._text = NativeText(prefix=prefix, limit=rollover_chars)
        self._status = StatusLine(gateway, team_id=team_id, channel=channel, thread_ts=thread_ts)
        self._streams: list[_Stream] = []
        self._doomed: list[_Stream] = []  # messages of a replaced (retried) answer, to remove
        self._cur: _Stream | None = None
        self._cards: list[Chunk] = []  # task_update chunks not sent yet
        self._card: str | None = None  # the title of the retry card a stream shows
        self._note: str | None = None
        self._button: Button | None = None
        self._slack_stopped = False  # Slack's Stop ended a stream: no new one starts (unless refused)
        self._refused: set[str] = set()  # streams whose Stop was refused (not the asker's)
        self._last_send = float("-inf")
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._edit: EditView | None = None  # the answer went on by edits
        self._forward_out = False  # the edit view shows ``out`` after the streams (not the raw answer)
        self._updates = 0

    # -- producer side: cheap, synchronous -----------------------------------------------------
    @property
    def text(self) -> str:
        return self._text.raw

    @property
    def messages(self) -> list[str]:
        edited = self._edit.messages if self._edit is not None else []
        return [s.ts for s in self._streams] + edited

    @property
    def edits(self) -> int:
        return self._updates + (self._edit.edits if self._edit is not None else 0)

    @property
    def streamed(self) -> int:
        """Native streams this answer used."""
        return len(self._streams)

    def append(self, delta: str) -> None:
        if not delta:
            return
        self._text.raw += delta
        if self._edit is not None:
            self._forward(final=False, delta=delta)
        self._changed.set()

    def replace(self, text: str) -> None:
        """A retried answer replaces the text: the messages showing the old one are removed."""
        self._doomed += self._streams
        self._streams, self._cur = [], None
        self._text.reset(text)
        self._cards = []
        if self._card is not None:  # the retry it showed is the status again until words come
            self._status.want(self._card)
            self._card = None
        if self._edit is not None:
            self._forward_out = False
            self._edit.replace(text)
        self._changed.set()

    def set_status(self, status: str | None) -> None:
        self.progress(status or "", done=status is None)

    def progress(self, title: str, *, done: bool) -> None:
        """Before the stream: the thread's status. While it streams: a ``task_update`` card."""
        if self._edit is not None:
            self._edit.progress(title, done=done)
            return
        if self._cur is None:
            self._status.want(None if done else plain_status(title))
        elif done and self._card is not None:
            self._cards.append(_card(self._card, "complete"))
            self._card = None
        elif not done and title:
            self._card = plain_status(title)
            self._cards.append(_card(self._card, "in_progress"))
        self._changed.set()

    def finish(self, note: str | None = None, *, button: Button | None = None) -> None:
        self._note, self._button = note, button

    def stop_refused(self, ts: str) -> None:
        """Someone not allowed pressed Slack's stop on stream ``ts``: Slack ended it, the answer goes
        on in a new stream."""
        self._refused.add(ts)
        if self._slack_stopped:
            self._slack_stopped = False
            self._changed.set()

    def _forward(self, *, final: bool, delta: str = "") -> None:
        assert self._edit is not None
        if not self._forward_out:
            self._edit.append(delta)
            return
        added = self._text.advance(final=final)
        if added:
            self._edit.append(added)

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
        self._closing.set()
        self._changed.set()
        try:
            if self._task is not None:
                await asyncio.shield(self._task)
            if self._edit is not None:
                if self._forward_out:
                    self._forward(final=True)
                self._edit.finish(self._note, button=self._button)
                await self._edit.__aexit__(None, None, None)
        finally:
            await self._bury()
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
        self._doomed += self._streams
        self._streams = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await asyncio.shield(self._bury())
        await asyncio.shield(self._status.close())
        await asyncio.shield(self._release())

    async def _release(self) -> None:
        """Give back a reserved start or stop that was not used."""
        if self._reserved is not None:
            for method in ("chat.startStream", "chat.stopStream"):
                await self._gw.pacing.live(method, key=self._team, answer_id=self._reserved, alive=False)

    # -- the flush task -----------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            shown = await self._status.show(
                plain_status(None), availability=self._availability, timeout=self._interval
            )
            if shown and self._placeholder_is_notice:
                # A queue notice would say "Queued" while the answer is written: the status says it.
                await self._drop_placeholder()
            while True:
                await self._changed.wait()
                if not self._closing.is_set() and self._cur is not None:
                    delay = self._last_send + self._interval - self._clock()
                    if delay > 0:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(delay):
                                await self._closing.wait()
                self._changed.clear()
                final = self._closing.is_set()
                await self._cycle(final=final)
                if final:
                    return
        except _GoOnByEdits as why:
            await self._go_on_by_edits(str(why))

    async def _cycle(self, *, final: bool) -> None:
        if self._doomed:
            await self._bury()
        self._text.advance(final=final)
        if not self._streams and not self._text.has_words:
            if final:
                raise _GoOnByEdits("no words")  # a note alone (a failure) goes where edits put it
            await self._status.sync(availability=self._availability, timeout=self._interval)
            return
        await self._place(final=final)

    async def _place(self, *, final: bool) -> None:
        while True:
            cur = self._cur
            if cur is None:
                if self._slack_stopped or not (self._text.pending or self._text.head):
                    break
                await self._start(self._text.piece(0))
                continue
            if cur.full:
                await self._stop(cur, Piece("", 0, full=False), final=False)
                continue
            aged = not final and self._clock() - cur.started >= self._rollover_seconds
            piece = self._text.piece(len(cur.shown), roll=aged and bool(self._text.pending))
            if piece.full:
                await self._stop(cur, piece, final=False)
            elif final:
                await self._stop(cur, piece, final=True)
                if cur.finished or self._slack_stopped or self._fits(cur):
                    break
                # Slack ended it and the rest is too long for one edit: it goes on in a new stream.
            else:
                if piece.text or self._cards:
                    await self._append(cur)
                break
        if final:
            await self._finish_ended()

    async def _start(self, piece: Piece) -> None:
        answer_id = self._reserved if not self._streams and not self._doomed else None
        user, team = self._recipient if self._recipient is not None else (None, None)
        try:
            ts = await self._gw.streams.start(
                team_id=self._team,
                channel=self._channel,
                thread_ts=self._thread,
                chunks=[*self._take_cards(), markdown_chunk(piece.text)],
                recipient_user_id=user,
                recipient_team_id=team,
                answer_id=answer_id,
            )
        except SlackError as err:
            if self._availability.unavailable_error(err.error):
                self._availability.lose_streams(self._team, err.error)
            logger.warning("chat.startStream failed: %s (request %s)", err.error, self._request_id)
            raise _GoOnByEdits(err.error) from None
        self._last_send = self._clock()
        stream = _Stream(ts=ts, started=self._clock(), answer_id=answer_id)
        self._streams.append(stream)
        self._cur = stream
        self._placed(stream, piece)
        self._on_stream(ts, self.stop_refused)
        self._status.cleared_by_reply()
        await self._drop_placeholder()

    def _placed(self, stream: _Stream, piece: Piece) -> None:
        self._text.place(piece)
        stream.shown += piece.text
        stream.end = self._text.placed
        stream.full = stream.full or piece.full

    async def _append(self, cur: _Stream) -> None:
        try:
            await self._gw.streams.append_slot(team_id=self._team, give_way=self._closing)
        except GaveWay:
            self._changed.set()  # the final cycle sends the text with the stop
            return
        self._text.advance(final=False)  # what came while this waited goes too
        piece = self._text.piece(len(cur.shown))
        if piece.full:
            self._changed.set()  # it outgrew the message meanwhile: the next cycle rolls over
            return
        chunks = [*self._take_cards(), *([markdown_chunk(piece.text)] if piece.text else [])]
        if not chunks:
            return
        try:
            await self._gw.streams.append(team_id=self._team, channel=self._channel, ts=cur.ts, chunks=chunks)
        except SlackError as err:
            self._last_send = self._clock()
            if err.transient:
                # It may have landed: end the stream and make it show exactly its text.
                await self._settle(cur, piece)
            else:
                await self._failed(cur, err)
            return
        self._last_send = self._clock()
        self._placed(cur, piece)

    async def _stop(self, cur: _Stream, piece: Piece, *, final: bool) -> None:
        """End ``cur`` with ``piece`` (and, when ``final``, the note and the buttons)."""
        note = f"\n\n{self._note}" if final and self._note else ""
        text = piece.text + note
        chunks = [*self._take_cards(), *([markdown_chunk(text)] if text else [])]
        blocks = self._final_blocks() if final else None
        uncertain = False
        for attempt in range(1, STOP_ATTEMPTS + 1):
            try:
                await self._gw.streams.stop(
                    team_id=self._team,
                    channel=self._channel,
                    ts=cur.ts,
                    chunks=chunks,
                    blocks=blocks,
                    answer_id=cur.answer_id,
                )
            except SlackError as err:
                if err.error in ENDED and uncertain:
                    break  # an earlier attempt landed, or Slack ended it: the edit below settles it
                if err.error in ENDED:
                    await self._failed(cur, err)
                    return
                if attempt == STOP_ATTEMPTS:
                    # Slack keeps refusing: the stream shows what it has, the rest goes on by edits.
                    logger.warning("chat.stopStream failed: %s (request %s)", err.error, self._request_id)
                    self._cur = None
                    raise _GoOnByEdits("chat.stopStream failed") from None
                uncertain = uncertain or err.transient
                logger.warning("chat.stopStream failed: %s (request %s)", err.error, self._request_id)
                continue
            else:
                uncertain = False
                break
        cur.live, cur.full = False, False
        self._cur = None
        self._placed(cur, piece)
        cur.shown += note
        cur.finished = final
        if uncertain:
            await self._update(cur, blocks=blocks)

    async def _settle(self, cur: _Stream, piece: Piece) -> None:
        """An append whose outcome is unknown: stop the stream and edit it to show exactly its text
        with ``piece``; the answer continues in a new stream."""
        with contextlib.suppress(SlackError):
            await self._gw.streams.stop(team_id=self._team, channel=self._channel, ts=cur.ts)
        cur.live = False
        self._cur = None
        self._placed(cur, piece)
        await self._ended(cur, exact=True)

    async def _failed(self, cur: _Stream, err: SlackError) -> None:
        """A call on ``cur`` failed. A stream Slack ended keeps what it shows; the rest goes on."""
        self._changed.set()
        if err.error not in ENDED:
            logger.warning("native stream call failed: %s (request %s)", err.error, self._request_id)
            return  # paced (a 429) or failing: the text stays pending, tried again
        logger.info("stream %s ended: %s (request %s)", cur.ts, err.error, self._request_id)
        if err.error == "stopped_by_user" and cur.ts not in self._refused:
            self._slack_stopped = True
        cur.live = False
        self._cur = None
        await self._ended(cur, exact=False)

    async def _ended(self, cur: _Stream, *, exact: bool) -> None:
        """``cur`` takes no more text. If it ends inside code, the fence is closed (and reopened in the
        next message); an edit makes it show that (or, ``exact``, what it should show) now, unless it
        is finished by the final edit anyway (after Slack's Stop, no stream follows it)."""
        closer, head = self._text.closing(cur.end)
        if closer:
            self._text.head = head + self._text.head
            cur.shown += closer
        cur.full = False
        if exact or (closer and not self._slack_stopped):
            await self._update(cur, blocks=None)

    def _fits(self, last: _Stream) -> bool:
        note = f"\n\n{self._note}" if self._note else ""
        return len(last.shown) + len(self._text.rest()) + len(note) <= self._text.limit + NOTE_ROOM

    async def _finish_ended(self) -> None:
        """The final cycle: a last message Slack ended gets the rest (the note, the buttons) by an
        edit; a rest too long for it goes on by edits in a new message."""
        last = self._streams[-1] if self._streams else None
        if last is None or last.live or last.finished:
            return
        note = f"\n\n{self._note}" if self._note else ""
        rest = "" if self._slack_stopped and (self._note or not self._fits(last)) else self._text.rest()
        if not self._fits(last) and not self._slack_stopped:
            raise _GoOnByEdits("the rest of a stream Slack ended")
        self._text.placed, self._text.head = len(self._text.out), ""
        last.shown += rest + note
        last.finished = True
        await self._update(last, blocks=self._final_blocks())

    async def _update(self, stream: _Stream, *, blocks: list[dict[str, Any]] | None) -> None:
        try:
            await self._gw.streams.update_markdown(
                team_id=self._team, channel=self._channel, ts=stream.ts, markdown=stream.shown, blocks=blocks
            )
            self._updates += 1
        except SlackError as err:
            logger.warning(
                "could not finish a streamed message: %s (request %s)", err.error, self._request_id
            )

    def _final_blocks(self) -> list[dict[str, Any]] | None:
        if self._button is not None:
            return [actions_block(self._button, self._request_id)]
        return [feedback_block(self._request_id)] if self._note is None else None

    def _take_cards(self) -> list[Chunk]:
        cards, self._cards = self._cards, []
        return cards

    async def _drop_placeholder(self) -> None:
        ts, self._placeholder = self._placeholder, None
        if ts is not None:
            try:
                await self._gw.delete_message(channel=self._channel, ts=ts)
            except SlackError as err:
                logger.warning(
                    "could not remove the placeholder: %s (request %s)", err.error, self._request_id
                )

    async def _bury(self) -> None:
        """Remove the messages of a replaced answer (a live one is stopped first)."""
        doomed, self._doomed = self._doomed, []
        for stream in doomed:
            try:
                if stream.live:
                    stream.live = False
                    await self._gw.streams.stop(
                        team_id=self._team, channel=self._channel, ts=stream.ts, answer_id=stream.answer_id
                    )
                await self._gw.delete_message(channel=self._channel, ts=stream.ts)
            except SlackError as err:
                logger.warning(
                    "could not remove a replaced message: %s (request %s)", err.error, self._request_id
                )

    async def _go_on_by_edits(self, why: str) -> None:
        """The rest of the answer is shown by edits: in the placeholder when nothing was streamed,
        else in a new message after the streamed ones."""
        logger.info("request %s goes on by edits (%s)", self._request_id, why)
        self._cur = None
        continuing = bool(self._streams)
        placeholder, self._placeholder = (None if continuing else self._placeholder), None
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


class _GoOnByEdits(Exception):
    """The answer cannot (or can no longer) be streamed natively."""


def _card(title: str, status: str) -> Chunk:
    return {"type": "task_update", "id": "retry", "title": title[:256], "status": status}
