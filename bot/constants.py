"""Numbers that come from Slack's platform or are part of Threadline's contract.

Slack's own limits are documented in ``shared/notes/slack-platform.md`` and the Slack API reference.
"""

from __future__ import annotations

from typing import TypedDict

SLACK_API_URL = "https://slack.com/api/"

# chat.update rejects text over 4,000 characters (msg_too_long); we keep a margin.
SLACK_UPDATE_TEXT_LIMIT = 4000
MESSAGE_LIMIT = 3900
# A section block's text is at most 3,000 characters.
SECTION_TEXT_LIMIT = 3000

# Slack expects an HTTP 2xx within 3 seconds, and retries an event up to three times.
SLACK_ACK_DEADLINE_SECONDS = 3.0
# A slash command's response_url takes at most 5 posts in 30 minutes.
RESPONSE_URL_MAX_POSTS = 5

# chat.update is Tier 3: about 50 a minute per workspace; we leave headroom by default.
DEFAULT_EDITS_PER_MINUTE = 45
SLACK_EDITS_PER_MINUTE = 50  # Slack's Tier 3: a setting above it is refused (against Slack itself)
# chat.postMessage: about one message a second per channel (short bursts tolerated).
SLACK_POSTS_PER_CHANNEL_PER_SECOND = 1.0
EDIT_WINDOW_SECONDS = 60.0
# A call Slack keeps answering 429 is asked again at most this many times (each after its Retry-After)
# before the 429 is the caller's; a Retry-After is honoured up to MAX_PAUSE_SECONDS.
MAX_RATE_LIMITED = 10
MAX_PAUSE_SECONDS = 60.0

# The largest request body /slack/events reads. Slack's payloads are far smaller (a message is at most
# 40,000 characters); anything larger is refused before it is buffered.
SLACK_MAX_BODY_BYTES = 1024 * 1024

# The "Summarize thread" message shortcut's callback_id (manifest.yml features.shortcuts).
SUMMARIZE_SHORTCUT = "summarize_thread"


# Sent with every message the bot posts or edits: no unfurl of a link the model chose, and no parsing
# of the text (a "@channel" typed by the model stays words; mentions are only the <@U…> we render).
class SafeMessage(TypedDict):
    parse: str
    unfurl_links: bool
    unfurl_media: bool


SAFE_MESSAGE: SafeMessage = {"parse": "none", "unfurl_links": False, "unfurl_media": False}
