"""One answer from the model into a view: the events of ``ModelClient.answer`` (retries are the model
seam's, ``bot.model.retry``) shown as they come — a retried stream replaces the partial text and shows
"retrying, 2 of 3…" — plus the context-length trim, the text-only retry for a model that refuses
images (remembered: later questions' images are not sent to it), the whole-answer timeout, and the
error → note mapping (``bot.errors``)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.context import Prompt, drop_oldest
from bot.errors import (
    TRUNCATED_NOTE,
    ContextTooLong,
    EmptyAnswer,
    ImagesNotSupported,
    ImageUnreadable,
    ModelError,
    ModelTimeout,
    user_message,
)
from bot.jobs import Request
from bot.metrics import AnswerStats, Metrics
from bot.model.base import Delta, Finished, ModelClient, Retrying
from bot.settings import Settings
from bot.texts import IMAGE_UNREADABLE_NOTE, IMAGES_NOT_SUPPORTED_NOTE, WARNING_PREFIX, retrying_status
from bot.view.base import AnswerView

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Generated:
    """How an answer ended: a note for the user (``None``: nothing to add), whether it failed, and
    whether asking again could help (``False``: an admin must fix something; no Retry button)."""

    note: str | None = None
    failed: bool = False
    retry_helps: bool = True


class Generator:
    def __init__(self, *, settings: Settings, model: ModelClient, metrics: Metrics) -> None:
        self.settings = settings
        self.model = model
        self.metrics = metrics
        # The model refused an image: later questions are asked with their text only, without paying a
        # refused request each (the process's model is fixed by its settings; a restart asks again).
        self.text_only = False

    async def generate(
        self, prompt: Prompt, view: AnswerView, request: Request, stats: AnswerStats | None
    ) -> Generated:
        """Stream the answer into ``view``."""
        notes: list[str] = []  # said before any error or truncation note

        def ended(note: str | None = None, **outcome: bool) -> Generated:
            text = "\n\n".join([*notes, note] if note else notes)
            return Generated(text or None, **outcome)

        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                finish = await self._adapting(prompt, view, request, stats, notes)
                if not view.text.strip():
                    raise EmptyAnswer()  # else the final edit would show the placeholder forever
        except TimeoutError as err:
            self.metrics.model_error(err)
            timeout = ModelTimeout("answer", self.settings.timeout_seconds)
            return ended(WARNING_PREFIX + user_message(timeout, request.id), failed=True)
        except ModelError as err:
            self.metrics.model_error(err)
            logger.warning("model error (request %s): %s", request.id, err)
            return ended(
                WARNING_PREFIX + user_message(err, request.id), failed=True, retry_helps=err.fixable_by_retry
            )
        except Exception as err:
            logger.exception("internal error (request %s)", request.id)
            return ended(WARNING_PREFIX + user_message(err, request.id), failed=True)
        if finish == "length":
            self.metrics.answer_truncated()
            logger.warning("request %s: the answer was cut off at the length limit", request.id)
            return ended(WARNING_PREFIX + TRUNCATED_NOTE)
        return ended()

    async def _adapting(
        self, prompt: Prompt, view: AnswerView, request: Request, stats: AnswerStats | None, notes: list[str]
    ) -> str | None:
        """One answer; asked once more without the images when the model takes none (``notes`` says
        so), and once more without the oldest turns when the context is too long."""
        trimmed = text_only = False
        if self.text_only and (without := prompt.without_images()) is not None:
            text_only = True
            notes.append(IMAGES_NOT_SUPPORTED_NOTE)
            prompt = without
        while True:
            try:
                return await self._answer(prompt, view, stats)
            except ImagesNotSupported as err:
                without = None if text_only else prompt.without_images()
                if without is None:
                    raise
                text_only = True
                if isinstance(err, ImageUnreadable):  # this image, not images: later ones are sent
                    logger.info(
                        "the model refused an image (request %s): asking with the text only", request.id
                    )
                    notes.append(IMAGE_UNREADABLE_NOTE)
                else:
                    if not self.text_only:
                        logger.warning(
                            "the model takes no images (request %s): asking with the text only, and "
                            "leaving images out of later questions until the bot restarts",
                            request.id,
                        )
                    self.text_only = True
                    notes.append(IMAGES_NOT_SUPPORTED_NOTE)
                prompt = without
            except ContextTooLong:
                shorter = None if trimmed else drop_oldest(prompt)
                if shorter is None:
                    raise
                logger.info(
                    "context too long (request %s): retrying with %d fewer turns",
                    request.id,
                    shorter.dropped_turns - prompt.dropped_turns,
                )
                trimmed = True
                prompt = shorter
            view.replace("")

    async def _answer(self, prompt: Prompt, view: AnswerView, stats: AnswerStats | None) -> str | None:
        """One model call (its retries included); returns the server's finish reason."""
        produced = 0
        retrying = False  # a retry is shown and its attempt has not written yet
        finish: str | None = None
        try:
            async for event in self.model.answer(prompt.messages):
                if isinstance(event, Delta):
                    if retrying:
                        # The new attempt writes: it replaces the partial text, never appends.
                        view.replace("")
                        view.progress("", done=True)
                        retrying = False
                    if stats is not None:
                        stats.token()
                    produced += len(event.text)
                    view.append(event.text)
                elif isinstance(event, Retrying):
                    self.metrics.model_error(event.error)
                    view.progress(retrying_status(event.attempt, event.attempts), done=False)
                    retrying = True
                    produced = 0
                elif isinstance(event, Finished):
                    finish = event.finish_reason
                    if stats is not None:
                        usage = None
                        if event.prompt_tokens is not None or event.completion_tokens is not None:
                            usage = {
                                "prompt_tokens": event.prompt_tokens or 0,
                                "completion_tokens": event.completion_tokens or 0,
                            }
                        stats.usage(usage, prompt.messages, produced)
        finally:
            if retrying:  # the last attempt wrote nothing: nothing of the failed one stays
                view.replace("")
                view.progress("", done=True)
        return finish
