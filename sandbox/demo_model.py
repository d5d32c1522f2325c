"""The sandbox's built-in demo model: an OpenAI-compatible Chat Completions server that needs no network.

It streams a canned but useful answer word by word at a visible pace (an answer takes several seconds, so
questions sent quickly in one channel wait in line and show their place): a label saying it is the demo
model, the question echoed back, how to configure a real model, and a little Markdown (a list, a code
block) so the rendering shows. Words in the question (the newest user message) trigger what a real model
server does now and then, so the bot's handling of it can be seen offline:

- ``long``: a long answer, to try the Stop button on;
- ``flaky``: the first request fails with HTTP 500 (``Retry-After: 1``); the bot retries and the retried
  request is answered, so the thread shows "retrying, 2 of 3…" and then the answer;
- ``fail`` (also ``fails``, ``failing``, ``failure`` …) or ``broken``: every attempt of the bot's first answer
  fails with HTTP 503 (``max_attempts`` requests, the bot's ``BOT_MAX_ATTEMPTS``), so the bot reports the
  error in the thread with a Retry button; the request after them, the Retry, is answered.

Failures are counted per question text; once answered, the same question fails again the next time.

    async with DemoModel() as model:
        # OPENAI_BASE_URL=model.base_url OPENAI_API_KEY=model.api_key OPENAI_MODEL=DEMO_MODEL_NAME
"""

from __future__ import annotations

import base64
import re
from typing import Any

from sandbox.fake_openai import FakeOpenAI, Reply, image_parts

__all__ = [
    "ANSWER_END",
    "DEMO_LABEL",
    "DEMO_MODEL_NAME",
    "LONG_ANSWER_END",
    "DemoModel",
    "demo_answer",
    "demo_summary",
    "failures_for",
]

DEMO_MODEL_NAME = "threadline-demo"
DEMO_API_KEY = "sk-sandbox-demo"
DEMO_LABEL = "*(Demo model — set OPENAI_API_KEY for real answers)*"
ANSWER_END = "That's all from the demo model."
LONG_ANSWER_END = "That's the end of the long demo answer."
WORD_SECONDS = 0.03  # between words: a visible pace (an answer takes about 6 s)
FIRST_WORD_SECONDS = 0.5  # before the first word, as a real model thinks (the placeholder shows meanwhile)
FLAKY_RETRY_AFTER = 1.0  # the Retry-After of a flaky question's failure: the retry status shows a second
REMEMBERED_QUESTIONS = 100  # failure counts kept (the sandbox may run for hours)

_SPEAKER = re.compile(r"^<@[A-Z0-9_]+>:\s*")
_LONG_WORD = re.compile(r"\blong\b", re.IGNORECASE)
_FLAKY_WORD = re.compile(r"\bflaky\b", re.IGNORECASE)
_FAIL_WORD = re.compile(r"\b(?:fail\w*|broken)\b", re.IGNORECASE)
# The "Summarize thread" shortcut's request (bot/summary.py SUMMARY_REQUEST).
_SUMMARY_REQUEST = re.compile(r"^summari[sz]e this thread\.?$", re.IGNORECASE)
_AUTHOR = re.compile(r"^<@([A-Z0-9_]+)>")
# The bot's markers for what was sent with a question (bot/files.py): "[image: name]", "[file: name…]".
_IMAGE_MARKER = re.compile(r"^\[image: (.*)\]$", re.MULTILINE)
_FILE_MARKER = re.compile(
    r"^\[file: (.*?)(?: \(only its beginning: it is longer\))?\. Its content", re.MULTILINE
)
_FIRST_MARKER = re.compile(r"\n*^\[(?:image|file): ", re.MULTILINE)

_HOW_TO = """\
I'm the sandbox's built-in **demo model**, so I can't really answer, but I show how Threadline streams \
an answer into Slack. To get real answers:

1. Stop the sandbox with Ctrl-C.
2. Configure a model, in your environment or in `.env`:
   - OpenAI: `OPENAI_API_KEY=sk-…` (and optionally `OPENAI_MODEL`, default `gpt-4o-mini`)
   - a local OpenAI-compatible server such as Ollama: `OPENAI_BASE_URL=http://localhost:11434/v1` \
and `OPENAI_MODEL=llama3.1`
3. Start it again:

```sh
export OPENAI_API_KEY=sk-...
scripts/run.sh      # or: python -m bot sandbox
```
"""

_TRY = """\
Things to try here:

- reply in this thread with another `@Threadline` mention: the thread's earlier turns go to the model \
as context
- *Summarize thread* on a message's menu: a summary of its thread, streamed into it
- `/ask` in a channel, or a message in the DM with Threadline
- *long* in a question: a long answer, to press Stop on
- several questions at once in one channel: they wait in line, each showing its place
- *flaky* in a question: the model fails once (HTTP 500), and the bot retries
- *fail* or *broken*: every attempt fails (HTTP 503); the bot says so, with a Retry button that works
- 📎 *sample image* or 📄 *sample file* in the composer: the bot sends it along, and I say what I got
"""

_LONG = """\
### Part {n}

Streaming works like this: the bot posts a placeholder at once, then edits it with the newest text at \
most once per `BOT_EDIT_INTERVAL_SECONDS`, and every edit of the workspace shares one budget of \
`BOT_EDITS_PER_MINUTE`. Final texts go first when the budget is tight, then first words, then progress. \
An answer longer than one Slack message continues in further messages in the thread.
"""


def question_of(body: dict[str, Any]) -> str:
    """The newest user message of a chat completion request, without the bot's ``<@U…>:`` prefix."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return _SPEAKER.sub("", str(content or "")).strip()
    return ""


def _plain(content: object, limit: int = 140) -> str:
    """A thread message's words, as the page would show them: no author prefix or quote marks."""
    text = _SPEAKER.sub("", str(content or ""))
    text = re.sub(r"^>\s?", "", text, flags=re.MULTILINE)
    text = " ".join(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _author(message: dict[str, Any]) -> str:
    if message.get("role") == "assistant":
        return "Threadline"
    found = _AUTHOR.match(str(message.get("content") or ""))
    return found.group(1) if found else "?"


def demo_summary(body: dict[str, Any]) -> str:
    """What the demo model says to "Summarize this thread.": it cannot summarize, but it shows what
    it received: how many messages, from how many authors, the first and the newest."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") != "system"]
    thread = messages[:-1]  # the last is the request itself
    parts = [DEMO_LABEL, "**Summary of this thread** (the demo model only counts; a real model writes it):"]
    if not thread:
        parts.append("The thread is empty: there is nothing to summarize yet.")
    else:
        authors = {_author(m) for m in thread}
        first, newest = _plain(thread[0].get("content")), _plain(thread[-1].get("content"))
        lines = [
            f"- {len(thread)} message{'s' if len(thread) != 1 else ''} from {len(authors)} "
            f"author{'s' if len(authors) != 1 else ''} reached the model",
            f"- It starts with: “{first}”",
        ]
        if len(thread) > 1:
            lines.append(f"- The newest: “{newest}”")
        parts.append("\n".join(lines))
    parts.append(ANSWER_END)
    return "\n\n".join(parts) + "\n"


def _size(n: int) -> str:
    return f"{n} B" if n < 1000 else f"{n / 1000:.1f} KB" if n < 1_000_000 else f"{n / 1_000_000:.1f} MB"


def received(body: dict[str, Any]) -> str:
    """What came with the newest question: ``I got 1 image (sample.png, 1.2 KB).``; "" when nothing."""
    users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    last: dict[str, Any] = users[-1] if users else {}
    content = last.get("content")
    text = content if isinstance(content, str) else question_of({"messages": [last]})
    names = _IMAGE_MARKER.findall(text)
    images = []
    for i, part in enumerate(image_parts({"messages": [last]})):
        url = str((part.get("image_url") or {}).get("url") or "")
        data = url.split(",", 1)[1] if url.startswith("data:") and "," in url else ""
        size = len(base64.b64decode(data, validate=False)) if data else 0
        name = names[i] if i < len(names) else "an image"
        images.append(f"{name}, {_size(size)}" if data else f"{name}, a link")
    files = _FILE_MARKER.findall(text)
    said = []
    if images:
        said.append(f"{len(images)} image{'s' if len(images) != 1 else ''} ({'; '.join(images)})")
    elif names:
        said.append(f"no image, only the name of {', '.join(names)}: the bot sent the text only")
    if files:
        said.append(f"{len(files)} text file{'s' if len(files) != 1 else ''} ({', '.join(files)})")
    return f"I got {' and '.join(said)}." if said else ""


def demo_answer(body: dict[str, Any]) -> str:
    """The demo model's Markdown answer to a chat completion request."""
    question = question_of(body)
    if _SUMMARY_REQUEST.match(question):
        return demo_summary(body)
    question = _FIRST_MARKER.split(question, 1)[0]
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    earlier = max(0, len([m for m in messages if m.get("role") != "system"]) - 1)
    # Slack escapes &, < and > in what people type; show the question as they typed it.
    echo = " ".join(question.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split())
    if len(echo) > 200:
        echo = echo[:199] + "…"
    parts = [DEMO_LABEL, f"You asked: “{echo}”" if echo else "You asked nothing in particular."]
    got = received(body)
    if got:
        parts.append(got)
    parts.append(_HOW_TO)
    if earlier:
        parts.append(
            f"This request carried {earlier} earlier turn{'s' if earlier != 1 else ''} of the thread "
            "as context."
        )
    if _LONG_WORD.search(question):
        parts.extend(_LONG.format(n=n) for n in range(1, 9))
        parts.append(LONG_ANSWER_END)
    else:
        parts.extend((_TRY, ANSWER_END))
    return "\n\n".join(part.strip("\n") for part in parts) + "\n"


def failures_for(question: str, *, max_attempts: int) -> tuple[int, int]:
    """How many requests for ``question`` fail before one is answered, and with which HTTP status:
    ``(0, 0)`` for most questions, one 500 for a *flaky* one, ``max_attempts`` 503s for a failing one."""
    if _FAIL_WORD.search(question):
        return max(1, max_attempts), 503
    if _FLAKY_WORD.search(question):
        return 1, 500
    return 0, 0


class DemoModel(FakeOpenAI):
    """An OpenAI-compatible server that answers every request with ``demo_answer``, a word every
    ``word_seconds``, after failing the requests its trigger words ask for (``failures_for``; a failing
    question fails ``max_attempts`` requests, the number of attempts the bot makes per answer)."""

    def __init__(
        self,
        *,
        word_seconds: float = WORD_SECONDS,
        first_word_seconds: float = FIRST_WORD_SECONDS,
        max_attempts: int = 3,
        flaky_retry_after: float = FLAKY_RETRY_AFTER,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(api_key=DEMO_API_KEY, model=DEMO_MODEL_NAME, host=host)
        self.word_seconds = word_seconds
        self.first_word_seconds = first_word_seconds
        self.max_attempts = max_attempts
        self.flaky_retry_after = flaky_retry_after
        self._failed: dict[str, int] = {}  # question -> requests failed since it was last answered

    def reply_for(self, body: dict[str, Any]) -> Reply:
        self._trim()
        question = question_of(body)
        failures, status = failures_for(question, max_attempts=self.max_attempts)
        key = " ".join(question.lower().split())
        failed = self._failed.pop(key, 0)  # re-inserted below: the newest question is kept longest
        if failed < failures:
            self._failed[key] = failed + 1
            while len(self._failed) > REMEMBERED_QUESTIONS:
                del self._failed[next(iter(self._failed))]
            return Reply(
                chunks=[],
                status=status,
                first_delay=self.first_word_seconds,  # a server error takes its time too
                retry_after=self.flaky_retry_after if status == 500 else None,
            )
        return Reply.text(
            demo_answer(body),
            delay=self.word_seconds,
            first_delay=self.first_word_seconds,
            model=DEMO_MODEL_NAME,
        )

    def _trim(self, keep: int = 100) -> None:
        """Forget all but the newest requests: the sandbox may run for hours."""
        del self.requests[:-keep]
        del self.request_times[:-keep]
        del self.request_headers[:-keep]
        del self.finished_at[:-keep]
