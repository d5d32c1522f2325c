"""The files of a question, read by the worker (after the ack, never in a handler): images downloaded
and sent as image parts (data URLs), text files read into the question, fenced and named, and a note in
plain words for every file that was not read (too many, too large, a kind the bot does not read, or a
download that failed). A failed download never fails the answer: the text is answered.

The question's text gains a marker for each image sent (``[image: name]``) and each text file's
content; that text is what the conversation store keeps of the turn (no image bytes are stored, so an
earlier image is not sent again in later turns).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.context import ImagePart
from bot.files import FileRef, data_url, decode_text, file_block, human_size, image_marker, sniff_image
from bot.gateway.files import DownloadFailed, FileDownloads
from bot.jobs import Request
from bot.settings import Settings
from bot.texts import (
    FILES_NOT_READ_NOTE,
    file_cut_note,
    files_not_downloaded_note,
    files_too_large_note,
    files_unreadable_note,
    images_skipped_note,
)

logger = logging.getLogger(__name__)

# A text file's bytes read for ``max_file_chars`` characters (UTF-8 takes up to 4 bytes a character).
BYTES_PER_CHAR = 4


@dataclass(frozen=True)
class Gathered:
    """What the files add to a question: text after the question's own, image parts, notes."""

    text: str = ""
    images: tuple[ImagePart, ...] = ()
    notes: tuple[str, ...] = ()

    def question(self, text: str) -> str:
        """The question's text followed by the files' markers and contents."""
        return "\n\n".join(part for part in (text, self.text) if part)


@dataclass
class _Outcome:
    """Which files ended how (names, in the order they were sent)."""

    unreadable: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    too_large: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)


class Attachments:
    def __init__(self, *, settings: Settings, downloads: FileDownloads) -> None:
        self.settings = settings
        self.downloads = downloads

    async def gather(self, request: Request) -> Gathered:
        """Read ``request``'s files (at once, each within the download timeout)."""
        if not request.files:
            # A file_share that listed no files (or a job queued before files were read).
            return Gathered(notes=(FILES_NOT_READ_NOTE,) if request.has_files else ())
        outcome = _Outcome()
        wanted = self._choose(request.files, outcome)
        results = await asyncio.gather(*(self._read(f, outcome) for f in wanted))
        texts: list[str] = []
        images: list[ImagePart] = []
        for result in results:
            if isinstance(result, ImagePart):
                images.append(result)
                texts.append(image_marker(result.name))
            elif result is not None:
                texts.append(result)
        return Gathered(text="\n\n".join(texts), images=tuple(images), notes=self._notes(outcome))

    def _choose(self, files: Sequence[FileRef], outcome: _Outcome) -> list[FileRef]:
        """The files worth downloading, in order; the others are noted in ``outcome``."""
        wanted: list[FileRef] = []
        images = 0
        for f in files:
            if f.kind == "other" or not f.url_private:
                outcome.unreadable.append(f.name)
            elif f.kind == "image" and images >= self.settings.max_images:
                outcome.skipped.append(f.name)
            elif f.kind == "image" and f.size > self.settings.max_image_bytes:
                outcome.too_large.append(f.name)  # known from Slack's size: not downloaded
            else:
                images += f.kind == "image"
                wanted.append(f)
        return wanted

    async def _read(self, f: FileRef, outcome: _Outcome) -> ImagePart | str | None:
        """An image part, a text file's block, or ``None`` (noted in ``outcome``)."""
        image = f.kind == "image"
        limit = self.settings.max_image_bytes if image else self.settings.max_file_chars * BYTES_PER_CHAR
        try:
            got = await self.downloads.download(
                f.url_private,
                max_bytes=limit,
                timeout=self.settings.file_timeout_seconds,
                keep_beginning=not image,
            )
        except DownloadFailed as err:
            (outcome.too_large if err.reason == "too_large" else outcome.failed).append(f.name)
            log = logger.warning if err.reason != "too_large" else logger.info
            log("file %s (%s) not read: %s", f.id, f.kind, err)
            return None
        if image:
            mimetype = sniff_image(got.data)
            if mimetype is None:
                logger.warning("file %s: Slack's answer is not an image (%s)", f.id, got.content_type)
                outcome.failed.append(f.name)
                return None
            return ImagePart(name=f.name, url=data_url(mimetype, got.data))
        text = decode_text(got.data, cut=got.cut)
        if text is None:
            outcome.unreadable.append(f.name)  # binary after all
            return None
        cut = got.cut or len(text) > self.settings.max_file_chars
        if cut:
            outcome.cut.append(f.name)
        return file_block(f.name, text[: self.settings.max_file_chars], truncated=cut)

    def _notes(self, outcome: _Outcome) -> tuple[str, ...]:
        notes = []
        if outcome.unreadable:
            notes.append(files_unreadable_note(outcome.unreadable))
        if outcome.skipped:
            notes.append(images_skipped_note(outcome.skipped, self.settings.max_images))
        if outcome.too_large:
            notes.append(files_too_large_note(outcome.too_large, human_size(self.settings.max_image_bytes)))
        if outcome.failed:
            notes.append(files_not_downloaded_note(outcome.failed))
        if outcome.cut:
            notes.append(file_cut_note(outcome.cut, self.settings.max_file_chars))
        return tuple(notes)
