"""The native view's writer: the calls that put an answer's text into native streams (start, append,
stop, rollover, a stream Slack ended, a replaced answer's messages removed). Owned by
``native.NativeView``, which feeds it text and runs its ``cycle`` from one flush task; see that
module for the rules."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.blocks import Button, actions_block, feedback_block
from bot.errors import SlackError
from bot.gateway import GaveWay, SlackGateway
from bot.gateway.streams import Chunk, markdown_chunk
from bot.view.native_parts import Availability, StatusLine, remove_streams, started_stream
from bot.view.native_text import NativeText, Piece

logger = logging.getLogger(__name__)

# A stream that will take no more: Slack ended it (its lifetime, the person's Stop) or it is full.
ENDED = frozenset({"message_not_in_streaming_state", "stopped_by_user", "msg_too_long", "message_not_found"})
STOP_ATTEMPTS = 3
NOTE_ROOM = 900  # a message finished by an edit may exceed the rollover size by a note


class GoOnByEdits(Exception):
    """The answer cannot (or can no longer) be streamed natively."""


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


class StreamWriter:
    def __init__(
        self,
        *,
        gateway: SlackGateway,
        team_id: str,
        channel: str,
        thread_ts: str,
        request_id: str,
        recipient: tuple[str, str] | None,
        placeholder_ts: str | None,
        availability: Availability,
        status: StatusLine,
        text: NativeText,
        interval: float,
        rollover_seconds: float,
        reserved: str | None,
        on_stream: Callable[[str], Awaitable[None]],
        clock: Callable[[], float],
    ) -> None:
        self._gw = gateway
        self._team, self._channel, self._thread = team_id, channel, thread_ts
        self._request_id = request_id
        self._recipient = recipient
        self.placeholder = placeholder_ts
        self.availability = availability
        self.status = status
        self.text = text
        self.interval = interval
        self.rollover_seconds = rollover_seconds
        self.reserved = reserved  # a start and a stop kept for the first stream (Pacing.reserve)
        self.on_stream = on_stream
        self.clock = clock
        self.streams: list[_Stream] = []
        self.doomed: list[_Stream] = []  # messages of a replaced (retried) answer, to remove
        self.cur: _Stream | None = None
        self.cards: list[Chunk] = []  # task_update chunks not sent yet
        self.card: str | None = None  # the title of the retry card a stream shows
        self.note: str | None = None
        self.button: Button | None = None
        self.slack_stopped = False  # Slack's Stop ended a stream: no new one starts (unless refused)
        self.refused: set[str] = set()  # streams whose Stop was refused (not the asker's)
        self.last_send = float("-inf")
        self.changed = asyncio.Event()
        self.closing = asyncio.Event()
        self.updates = 0

    def stop_refused(self, ts: str) -> None:
        """Someone not allowed pressed Slack's stop on stream ``ts``: Slack ended it, the answer goes
        on in a new stream."""
        self.refused.add(ts)
        if self.slack_stopped:
            self.slack_stopped = False
            self.changed.set()

    async def cycle(self, *, final: bool) -> None:
        if self.doomed:
            await self.bury()
        self.text.advance(final=final)
        if not self.streams and not self.text.has_words:
            if final:
                raise GoOnByEdits("no words")  # a note alone (a failure) goes where edits put it
            await self.status.sync(availability=self.availability, timeout=self.interval)
            return
        await self._place(final=final)

    async def _place(self, *, final: bool) -> None:
        while True:
            cur = self.cur
            if cur is None:
                if self.slack_stopped or not (self.text.pending or self.text.head):
                    break
                await self._start(self.text.piece(0))
                continue
            if cur.full:
                await self._stop(cur, Piece("", 0, full=False), final=False)
                continue
            aged = not final and self.clock() - cur.started >= self.rollover_seconds
            piece = self.text.piece(len(cur.shown), roll=aged and bool(self.text.pending))
            if piece.full:
                await self._stop(cur, piece, final=False)
            elif final:
                await self._stop(cur, piece, final=True)
                if cur.finished or self.slack_stopped or self._fits(cur):
                    break
                # Slack ended it and the rest is too long for one edit: it goes on in a new stream.
            else:
                if piece.text or self.cards:
                    await self._append(cur)
                break
        if final:
            await self._finish_ended()

    async def _start(self, piece: Piece) -> None:
        answer_id = self.reserved if not self.streams and not self.doomed else None
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
            if self.availability.unavailable_error(err.error):
                self.availability.lose_streams(self._team, err.error)
            logger.warning("chat.startStream failed: %s (request %s)", err.error, self._request_id)
            # A lost answer may hide a stream that started: found in the thread, it goes on.
            found = (
                await started_stream(self._gw, self._team, self._channel, self._thread, piece.text)
                if err.transient
                else None
            )
            if found is None:
                raise GoOnByEdits(err.error) from None
            ts = found
        self.last_send = self.clock()
        stream = _Stream(ts=ts, started=self.clock(), answer_id=answer_id)
        self.streams.append(stream)
        self.cur = stream
        self._placed(stream, piece)
        await self.on_stream(ts)
        self.status.cleared_by_reply()
        await self.drop_placeholder()

    def _placed(self, stream: _Stream, piece: Piece) -> None:
        self.text.place(piece)
        stream.shown += piece.text
        stream.end = self.text.placed
        stream.full = stream.full or piece.full

    async def _append(self, cur: _Stream) -> None:
        try:
            await self._gw.streams.append_slot(team_id=self._team, give_way=self.closing)
        except GaveWay:
            self.changed.set()  # the final cycle sends the text with the stop
            return
        self.text.advance(final=False)  # what came while this waited goes too
        piece = self.text.piece(len(cur.shown))
        if piece.full:
            self.changed.set()  # it outgrew the message meanwhile: the next cycle rolls over
            return
        chunks = [*self._take_cards(), *([markdown_chunk(piece.text)] if piece.text else [])]
        if not chunks:
            return
        try:
            await self._gw.streams.append(team_id=self._team, channel=self._channel, ts=cur.ts, chunks=chunks)
        except SlackError as err:
            self.last_send = self.clock()
            if err.transient:
                # It may have landed: end the stream and make it show exactly its text.
                await self._settle(cur, piece)
            else:
                await self._failed(cur, err)
            return
        self.last_send = self.clock()
        self._placed(cur, piece)

    async def _stop(self, cur: _Stream, piece: Piece, *, final: bool) -> None:
        """End ``cur`` with ``piece`` (and, when ``final``, the note and the buttons)."""
        note = f"\n\n{self.note}" if final and self.note else ""
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
                    self.cur = None
                    raise GoOnByEdits("chat.stopStream failed") from None
                uncertain = uncertain or err.transient
                logger.warning("chat.stopStream failed: %s (request %s)", err.error, self._request_id)
                continue
            else:
                uncertain = False
                break
        cur.live, cur.full = False, False
        self.cur = None
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
        self.cur = None
        self._placed(cur, piece)
        await self._ended(cur, exact=True)

    async def _failed(self, cur: _Stream, err: SlackError) -> None:
        """A call on ``cur`` failed. A stream Slack ended keeps what it shows; the rest goes on."""
        self.changed.set()
        if err.error not in ENDED:
            logger.warning("native stream call failed: %s (request %s)", err.error, self._request_id)
            return  # paced (a 429) or failing: the text stays pending, tried again
        logger.info("stream %s ended: %s (request %s)", cur.ts, err.error, self._request_id)
        if err.error == "stopped_by_user" and cur.ts not in self.refused:
            self.slack_stopped = True
        cur.live = False
        self.cur = None
        await self._ended(cur, exact=False)

    async def _ended(self, cur: _Stream, *, exact: bool) -> None:
        """``cur`` takes no more text. If it ends inside code, the fence is closed (and reopened in the
        next message); an edit makes it show that (or, ``exact``, what it should show) now, unless it
        is finished by the final edit anyway (after Slack's Stop, no stream follows it)."""
        closer, head = self.text.closing(cur.end)
        if closer:
            self.text.head = head + self.text.head
            cur.shown += closer
        cur.full = False
        if exact or (closer and not self.slack_stopped):
            await self._update(cur, blocks=None)

    def _fits(self, last: _Stream) -> bool:
        note = f"\n\n{self.note}" if self.note else ""
        return len(last.shown) + len(self.text.rest()) + len(note) <= self.text.limit + NOTE_ROOM

    async def _finish_ended(self) -> None:
        """The final cycle: a last message Slack ended gets the rest (the note, the buttons) by an
        edit; a rest too long for it goes on by edits in a new message."""
        last = self.streams[-1] if self.streams else None
        if last is None or last.live or last.finished:
            return
        note = f"\n\n{self.note}" if self.note else ""
        rest = "" if self.slack_stopped and (self.note or not self._fits(last)) else self.text.rest()
        if not self._fits(last) and not self.slack_stopped:
            raise GoOnByEdits("the rest of a stream Slack ended")
        self.text.placed, self.text.head = len(self.text.out), ""
        last.shown += rest + note
        last.finished = True
        await self._update(last, blocks=self._final_blocks())

    async def _update(self, stream: _Stream, *, blocks: list[dict[str, Any]] | None) -> None:
        try:
            await self._gw.streams.update_markdown(
                team_id=self._team, channel=self._channel, ts=stream.ts, markdown=stream.shown, blocks=blocks
            )
            self.updates += 1
        except SlackError as err:
            logger.warning(
                "could not finish a streamed message: %s (request %s)", err.error, self._request_id
            )

    def _final_blocks(self) -> list[dict[str, Any]] | None:
        if self.button is not None:
            return [actions_block(self.button, self._request_id)]
        return [feedback_block(self._request_id)] if self.note is None else None

    def _take_cards(self) -> list[Chunk]:
        cards, self.cards = self.cards, []
        return cards

    async def drop_placeholder(self) -> None:
        ts, self.placeholder = self.placeholder, None
        if ts is not None:
            try:
                await self._gw.delete_message(channel=self._channel, ts=ts)
            except SlackError as err:
                logger.warning(
                    "could not remove the placeholder: %s (request %s)", err.error, self._request_id
                )

    async def bury(self) -> None:
        """Remove the messages of a replaced answer (a live one is stopped first)."""
        doomed, self.doomed = self.doomed, []
        live = {s.ts: s.answer_id for s in doomed if s.live}
        for stream in doomed:
            stream.live = False
        await remove_streams(
            self._gw, team_id=self._team, channel=self._channel, streams=[s.ts for s in doomed], live=live
        )


def card(title: str, status: str) -> Chunk:
    return {"type": "task_update", "id": "retry", "title": title[:256], "status": status}
