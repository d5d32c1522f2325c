"""Reading a thread with ``conversations.replies`` to its newest message.

Slack pages a thread oldest first (the parent message first), ``limit`` messages a page, and says
where the next page starts in ``response_metadata.next_cursor`` (empty on the last page). The newest
messages matter most (a summary, a follow-up's context), so every page is read, up to a bound of
pages; a thread longer than that is read up to there and the result says so. The method is rate
limited per workspace (Tier 3; 1 a minute for commercially distributed apps outside the Marketplace):
each page takes a slot of its own budget (``bot.gateway.pacing``) and a 429 pauses that budget.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.constants import MAX_RATE_LIMITED
from bot.errors import SlackError

if TYPE_CHECKING:
    from bot.gateway.client import SlackGateway

logger = logging.getLogger(__name__)

METHOD = "conversations.replies"


@dataclass(frozen=True)
class ThreadRead:
    """A thread's messages, root first; ``truncated`` when the page bound stopped the reading before
    the newest messages."""

    messages: list[dict[str, Any]]
    truncated: bool


class ThreadReader:
    """Reads threads for one gateway: ``page_size`` messages a page (Slack's maximum is 1,000, and 15
    for commercially distributed apps outside the Marketplace), at most ``max_pages`` pages a read."""

    def __init__(self, gateway: SlackGateway, *, page_size: int = 200, max_pages: int = 50) -> None:
        self.gateway = gateway
        self.page_size = max(1, page_size)
        self.max_pages = max(1, max_pages)

    async def read(
        self, *, channel: str, thread_ts: str, team_id: str = "", metadata: bool = False
    ) -> ThreadRead:
        """Every page of the thread, following the cursor, at most ``max_pages`` calls."""
        messages: list[dict[str, Any]] = []
        seen: set[str] = set()
        cursor: str | None = None
        for _ in range(self.max_pages):
            data = await _page(
                self.gateway,
                channel=channel,
                thread_ts=thread_ts,
                team_id=team_id,
                metadata=metadata,
                limit=self.page_size,
                cursor=cursor,
            )
            for message in data.get("messages") or []:
                ts = str(message.get("ts") or "") if isinstance(message, dict) else ""
                if ts and ts not in seen:  # a page may repeat the parent message: keep each once
                    seen.add(ts)
                    messages.append(message)
            meta = data.get("response_metadata")
            cursor = str(meta.get("next_cursor") or "") if isinstance(meta, dict) else ""
            if not cursor:
                return ThreadRead(messages, truncated=False)
        logger.warning(
            "thread %s in %s is longer than %d pages of %d: read up to there",
            thread_ts,
            channel,
            self.max_pages,
            self.page_size,
        )
        return ThreadRead(messages, truncated=True)


async def _page(
    gateway: SlackGateway,
    *,
    channel: str,
    thread_ts: str,
    team_id: str,
    metadata: bool,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """One page, within the workspace's budget; a 429 pauses the budget and the page is asked again."""
    key = f"replies:{team_id}"
    attempt = 0
    while True:
        try:
            return await gateway.paced(
                METHOD,
                lambda client: client.conversations_replies(
                    channel=channel, ts=thread_ts, limit=limit, cursor=cursor, include_all_metadata=metadata
                ),
                key=key,
                retry=True,
            )
        except SlackError as err:
            attempt += 1
            if err.retry_after is None or attempt > MAX_RATE_LIMITED:
                raise  # else the budget is paused for Retry-After: the page is asked again after it
