"""Every sentence Threadline shows a person, in one place.

Error notes (what a failure is called in plain words) are the table in ``bot.errors``; limits' refusals
are composed in ``bot.limits.policy``. Everything else a user reads is here.
"""

from __future__ import annotations

from bot.jobs import Request
from bot.render import escape

THINKING_TEXT = "_Thinking…_"
RESUMING_TEXT = "_resuming…_"
HELP_TEXT = (
    "Hi! Mention me with a question, like `@Threadline what is a token bucket?`, "
    "send me a direct message, or use `/ask <question>` in any channel. "
    "Reply in the thread to follow up: I remember the conversation of each thread."
)
ASK_USAGE_TEXT = "Usage: `/ask <question>`, for example `/ask what is a token bucket?`"
# A message that shared files without describing them (or a job queued before files were read).
FILES_NOT_READ_NOTE = "_(I couldn't read the attached files; answering the text of your message.)_"
# Files sent with a question (bot/attachments.py): what could not be read, in plain words.
IMAGES_NOT_SUPPORTED_NOTE = "_(This model can't read images, so I answered from the text only.)_"
IMAGE_UNREADABLE_NOTE = "_(The model couldn't read the image, so I answered from the text only.)_"
# A question too long for the model's budget: its beginning and its end were read (bot/context.py).
LONG_QUESTION_NOTE = (
    "_(Your message was very long; I read its beginning and its end and skipped the middle.)_"
)
INCOMPLETE_COMMAND_TEXT = (
    "Your `/ask` arrived incomplete (Slack did not say which channel or person it came from), "
    "so I can't answer it. Please try again."
)
INVITE_HINT = (
    "I'm not a member of this channel, so only you can see this answer. "
    "To have me answer in the channel, invite me with `/invite @Threadline`."
)
WORKING_ON_IT = "_Working on it…_"

WARNING_PREFIX = ":warning: "
STOPPED_PREFIX = ":black_square_for_stop: _Stopped"
BUSY_TEXT = "This channel is busy: too many questions are waiting. Please ask again in a few minutes."
BOT_BUSY_TEXT = "I'm busy right now: too many questions are waiting. Please ask again in a few minutes."
RESTARTED_TEXT = "I was restarted before I could answer this. Please ask again."
RESTARTING_TEXT = "I'm restarting right now, so I can't take this question. Please ask again in a minute."
QUEUE_DOWN_TEXT = "I can't take questions right now (my queue is unavailable). Please try again shortly."
CANNOT_POST_TEXT = "Sorry, I couldn't post in this channel, so I can't answer here."
# The "Summarize thread" message shortcut (bot/summary.py).
SUMMARY_CANNOT_POST_TEXT = (
    "I'm not a member of this channel, so I can't summarize its threads. "
    "Invite me with `/invite @Threadline` and try again."
)
THREAD_UNREADABLE_TEXT = (
    "Sorry, I couldn't read this thread, so I can't summarize it. Please try again later."
)
RETRY_TOO_OLD = "That question is too old to retry. Please ask it again."
RETRIED_PLACEHOLDER = "_(retried)_"


def _names(names: list[str]) -> str:
    quoted = ["`" + escape(name.replace("`", "'")) + "`" for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def files_unreadable_note(names: list[str]) -> str:
    """Files of a kind the bot does not read (not an image, not text)."""
    it = "this kind of file" if len(names) == 1 else "these kinds of file"
    return f"_(I can't read {it}: {_names(names)}; I answered the text of your message.)_"


def images_skipped_note(names: list[str], limit: int) -> str:
    most = "no images" if limit == 0 else f"at most {limit} image{'s' if limit != 1 else ''}"
    return f"_(I can look at {most} per message, so I skipped {_names(names)}.)_"


def files_too_large_note(names: list[str], limit: str) -> str:
    return f"_(Too large for me to read (over {limit}), so I skipped {_names(names)}.)_"


def files_not_downloaded_note(names: list[str]) -> str:
    them = "it" if len(names) == 1 else "them"
    return f"_(I couldn't download {_names(names)} from Slack, so I answered without {them}.)_"


def file_cut_note(names: list[str], chars: int) -> str:
    return f"_(I read only the first {chars:,} characters of {_names(names)}.)_"


def retrying_status(attempt: int, attempts: int) -> str:
    return f"_retrying, {attempt} of {attempts}…_"


def stopped_note(by: str | None) -> str:
    return f"{STOPPED_PREFIX} by <@{by}>._" if by else f"{STOPPED_PREFIX}._"


def stop_refused(asker: str) -> str:
    return f"Only <@{asker}> (or a workspace admin) can stop this answer."


QUEUED_PREFIX = "_Queued: "


def queued_text(ahead: int) -> str:
    if ahead <= 0:
        return THINKING_TEXT
    return f"{QUEUED_PREFIX}{ahead} request{'s' if ahead != 1 else ''} ahead of you…_"


def command_header(request: Request) -> str:
    """The first lines of a /ask answer: who asked what."""
    question = "\n".join(f">{line}" if line else ">" for line in escape(request.text).splitlines())
    return f"<@{request.user}> asked:\n{question}"


def in_channel(channel: str, text: str) -> str:
    """A private message about a channel (a DM when the channel refuses even ephemeral messages)."""
    return f"<#{channel}>: {text}"


def summary_partial_note(kept: int, total: int) -> str:
    """A summary of a thread too long for the model's budget: what it covers."""
    return (
        f"_(This thread is long: the summary covers its first message and its newest replies, {kept:,} "
        f"of its {total:,} messages.)_"
    )


def summary_cut_note(read: int) -> str:
    """A thread longer than one read may take (``BOT_THREAD_READ_MAX_PAGES``)."""
    return (
        f"_(This thread is longer than I can read at once: the summary covers its first {read:,} messages.)_"
    )
