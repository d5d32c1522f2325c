"""Files in the fake Slack: the file objects events carry, and ``url_private`` served as Slack serves it.

``add_file(name, content)`` keeps a file and returns its object as Slack puts it in a message event's
``files`` list (``id``, ``name``, ``title``, ``mimetype``, ``filetype``, ``size``, ``url_private``,
``url_private_download``, ``mode``…). ``GET /files-pri/<team>-<id>/<name>`` (and ``…/download/<name>``)
serves its bytes only with ``Authorization: Bearer <bot token>`` from a token that has ``files:read``.
Otherwise it answers as Slack does, never 401: without the token (or with a wrong one) a 302 to the
sign-in page (``login_page = "html"``: that page itself, HTTP 200 ``text/html``); with the token but
without ``files:read``, the sign-in page with HTTP 200. Every download is recorded in
``file_downloads``; ``fail_file(id, status)`` makes a file answer an HTTP error; ``latency["files"]``
delays every download.
"""

from __future__ import annotations

import asyncio
import itertools
import mimetypes
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

JSONDict = dict[str, Any]

SIGN_IN_PAGE = """<!DOCTYPE html><html lang="en-US"><head><title>Sign in | Slack</title></head>
<body><h1>Sign in to {team}</h1><p>Continue with the email address you use to sign in.</p></body></html>
"""

# Slack's filetype for a few extensions (the rest: the extension itself, or "binary").
_FILETYPES = {"md": "markdown", "py": "python", "js": "javascript", "txt": "text", "yml": "yaml"}


@dataclass(frozen=True)
class StoredFile:
    id: str
    name: str
    mimetype: str
    filetype: str
    content: bytes


@dataclass(frozen=True)
class FileDownload:
    """One request for a file's URL: which file, whether it carried the bot token, what was answered."""

    file_id: str
    authorized: bool
    status: int


class FilesMixin:
    """Mixed into ``FakeSlack``."""

    if TYPE_CHECKING:
        bot_token: str
        team_id: str
        team_domain: str
        scopes: list[str]
        latency: dict[str, float]

        @property
        def url(self) -> str: ...
        def _changed(self) -> None: ...

    def _init_files(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.file_downloads: list[FileDownload] = []
        self.login_page = "redirect"  # what an unauthenticated download gets: "redirect" (302) or "html"
        self._file_failures: dict[str, int] = {}
        self._file_ids = itertools.count(1)

    def _add_file_routes(self, app: web.Application) -> None:
        app.router.add_get("/files-pri/{key}/{tail:.*}", self._handle_file)
        app.router.add_get("/signin", self._handle_signin)

    def add_file(
        self,
        name: str,
        content: bytes,
        *,
        mimetype: str | None = None,
        filetype: str | None = None,
        user: str = "U_ALICE",
    ) -> JSONDict:
        """Keep a file; returns its object as a message event's ``files`` list carries it."""
        file_id = f"F{next(self._file_ids):08d}"
        mimetype = mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        filetype = filetype or _FILETYPES.get(extension, extension or "binary")
        self.files[file_id] = StoredFile(file_id, name, mimetype, filetype, content)
        base = f"{self.url}/files-pri/{self.team_id}-{file_id}"
        return {
            "id": file_id,
            "created": 1_700_000_000,
            "timestamp": 1_700_000_000,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": user,
            "user_team": self.team_id,
            "editable": False,
            "size": len(content),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{base}/{quote(name)}",
            "url_private_download": f"{base}/download/{quote(name)}",
            "permalink": f"https://{self.team_domain}.slack.com/files/{user}/{file_id}/{quote(name)}",
            "is_starred": False,
            "has_rich_preview": False,
        }

    def fail_file(self, file_id: str, status: int) -> None:
        """Every download of ``file_id`` answers HTTP ``status`` (404: deleted, 500: Slack's trouble)."""
        self._file_failures[file_id] = status

    def downloads_of(self, file_ids: Iterable[str] | None = None) -> list[FileDownload]:
        wanted = None if file_ids is None else set(file_ids)
        return [d for d in self.file_downloads if wanted is None or d.file_id in wanted]

    def _sign_in_page(self) -> web.Response:
        return web.Response(text=SIGN_IN_PAGE.format(team=self.team_domain), content_type="text/html")

    async def _handle_signin(self, request: web.Request) -> web.StreamResponse:
        return self._sign_in_page()

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        delay = self.latency.get("files", 0.0)  # a slow file server
        if delay:
            await asyncio.sleep(delay)
        key = request.match_info["key"]
        file_id = key.split("-", 1)[1] if key.startswith(f"{self.team_id}-") else ""
        authorized = request.headers.get("Authorization", "") == f"Bearer {self.bot_token}"
        stored = self.files.get(file_id)
        response: web.StreamResponse
        if not authorized:
            if self.login_page == "html":
                response = self._sign_in_page()
            else:
                location = f"{self.url}/signin?redir={quote(request.path_qs, safe='')}"
                response = web.Response(status=302, headers={"Location": location}, text="Found")
        elif "files:read" not in self.scopes:
            response = self._sign_in_page()  # Slack answers a token without the scope with its sign-in page
        elif stored is None:
            response = web.Response(status=404, text="Not found", content_type="text/plain")
        elif file_id in self._file_failures:
            status = self._file_failures[file_id]
            response = web.Response(status=status, text="Error", content_type="text/plain")
        else:
            response = web.Response(body=stored.content, content_type=stored.mimetype)
        self.file_downloads.append(FileDownload(file_id, authorized, response.status))
        self._changed()
        return response


def sample_png(width: int = 48, height: int = 32) -> bytes:
    """A small PNG (a colour gradient), made here: the sandbox's built-in sample image and the tests'."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
