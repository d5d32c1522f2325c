"""The messages an edited answer occupies, and what each of them shows now (text and button).

The edit view decides what to send (``bot.view.plan``); this keeps the record, posts a continuation
piece, and removes messages the answer no longer needs (a retried answer that became shorter, or a
message given up to be posted anew).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.blocks import Button
from bot.errors import SlackError
from bot.gateway import SlackGateway

logger = logging.getLogger(__name__)


class ShownMessages:
    def __init__(
        self,
        gateway: SlackGateway,
        *,
        channel: str,
        thread_ts: str,
        request_id: str,
        team_id: str,
        ts: list[str],
        blocks_of: Callable[[str, Button | None], list[dict[str, Any]] | None],
        clock: Callable[[], float],
    ) -> None:
        self._clock = clock
        self._gateway = gateway
        self._channel = channel
        self._thread_ts = thread_ts
        self._request_id = request_id
        self._team_id = team_id
        self._blocks_of = blocks_of
        # The placeholder, and the continuations an earlier worker posted before it died (a resumed
        # answer edits them, or deletes those it no longer needs). What they show is unknown: each
        # differs, so each is brought up to date. The placeholder has no button.
        self.ts = ts
        self.sent: list[str] = [""] * len(ts)
        self.buttons: list[Button | None] = [None] * len(ts)
        self.edits = 0

    async def edit(
        self, index: int, text: str, button: Button | None, *, team_id: str, deadline: float | None
    ) -> bool | None:
        """Edit message ``index`` (its edit slot already taken): True when it shows ``text``, False
        when it may be retried, None when it must be given up (deleted by someone, or the final
        text's ``deadline`` has passed)."""
        try:
            await self._gateway.update_message(
                team_id=team_id,
                channel=self._channel,
                ts=self.ts[index],
                text=text,
                blocks=self._blocks_of(text, button),
                slot_taken=True,
            )
        except SlackError as err:
            if err.retry_after is None:
                logger.warning("chat.update failed: %s (request %s)", err.error, self._request_id)
            if err.error == "message_not_found" or (deadline is not None and self._clock() >= deadline):
                return None
            return False
        self.edits += 1
        self.record(index, text, button)
        return True

    def record(self, index: int, text: str, button: Button | None) -> None:
        while len(self.sent) <= index:
            self.sent.append("")
            self.buttons.append(None)
        self.sent[index] = text
        self.buttons[index] = button

    async def post(self, index: int, text: str, button: Button | None) -> None:
        """Post piece ``index`` of the answer as a new message in the thread."""
        ts = await self._gateway.posts.post_answer(
            channel=self._channel,
            text=text,
            thread_ts=self._thread_ts,
            blocks=self._blocks_of(text, button),
            request_id=self._request_id,
            piece=index,
            team_id=self._team_id,
        )
        self.ts.append(ts)
        self.record(index, text, button)

    async def repost_from(self, index: int) -> None:
        """Give up message ``index`` and the ones after it: delete them (best effort, so no stale
        text or live Stop button stays behind) and forget them; the sync then posts those pieces
        anew, in order, so the answer is never lost."""
        logger.warning("posting the answer anew from message %d (request %s)", index, self._request_id)
        await self.delete_from(index)

    async def delete_from(self, keep: int) -> None:
        for ts in self.ts[keep:]:
            if ts == self._thread_ts:
                continue  # a command's answer roots its thread: it stays, the pieces go under it
            try:
                await self._gateway.delete_message(channel=self._channel, ts=ts)
            except SlackError as err:
                logger.warning("could not delete a leftover message: %s", err.error)
        del self.ts[keep:]
        del self.sent[keep:]
        del self.buttons[keep:]
