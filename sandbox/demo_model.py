"""The sandbox's built-in demo model: an OpenAI-compatible Chat Completions server that needs no network.

It streams a canned but useful answer word by word at a visible pace: a label saying it is the demo model,
the question echoed back, how to configure a real model, and a little Markdown (a list, a code block) so
the rendering shows. A question with the word "long" gets a long answer, to try the Stop button on.

    async with DemoModel() as model:
        # OPENAI_BASE_URL=model.base_url OPENAI_API_KEY=model.api_key OPENAI_MODEL=DEMO_MODEL_NAME
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.fake_openai import FakeOpenAI, Reply

__all__ = ["ANSWER_END", "DEMO_LABEL", "DEMO_MODEL_NAME", "LONG_ANSWER_END", "DemoModel", "demo_answer"]

DEMO_MODEL_NAME = "threadline-demo"
DEMO_API_KEY = "sk-sandbox-demo"
DEMO_LABEL = "*(Demo model — set OPENAI_API_KEY for real answers)*"
ANSWER_END = "That's all from the demo model."
LONG_ANSWER_END = "That's the end of the long demo answer."
WORD_SECONDS = 0.03  # between words: a visible pace
FIRST_WORD_SECONDS = 0.4  # before the first word, as a real model thinks (the placeholder shows meanwhile)

_SPEAKER = re.compile(r"^<@[A-Z0-9_]+>:\s*")

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
- `/ask` in a channel, or a message in the DM with Threadline
- ask for something *long* to watch a longer answer stream in
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


def demo_answer(body: dict[str, Any]) -> str:
    """The demo model's Markdown answer to a chat completion request."""
    question = question_of(body)
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    earlier = max(0, len([m for m in messages if m.get("role") != "system"]) - 1)
    # Slack escapes &, < and > in what people type; show the question as they typed it.
    echo = " ".join(question.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split())
    if len(echo) > 200:
        echo = echo[:199] + "…"
    parts = [DEMO_LABEL, f"You asked: “{echo}”" if echo else "You asked nothing in particular.", _HOW_TO]
    if earlier:
        parts.append(
            f"This request carried {earlier} earlier turn{'s' if earlier != 1 else ''} of the thread "
            "as context."
        )
    if re.search(r"\blong\b", question, re.IGNORECASE):
        parts.extend(_LONG.format(n=n) for n in range(1, 9))
        parts.append(LONG_ANSWER_END)
    else:
        parts.extend((_TRY, ANSWER_END))
    return "\n\n".join(part.strip("\n") for part in parts) + "\n"


class DemoModel(FakeOpenAI):
    """An OpenAI-compatible server that answers every request with ``demo_answer``, a word every
    ``word_seconds``."""

    def __init__(
        self,
        *,
        word_seconds: float = WORD_SECONDS,
        first_word_seconds: float = FIRST_WORD_SECONDS,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(api_key=DEMO_API_KEY, model=DEMO_MODEL_NAME, host=host)
        self.word_seconds = word_seconds
        self.first_word_seconds = first_word_seconds

    def reply_for(self, body: dict[str, Any]) -> Reply:
        self._trim()
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
