"""Downloading a file a person shared, from its ``url_private``, with the bot token.

Slack serves ``url_private`` only with ``Authorization: Bearer xoxb-…`` from a token with ``files:read``.
Without it (or without the scope) Slack does not answer 401: it redirects to its sign-in page (302) or
serves that page itself (HTTP 200, ``text/html``). So a download is taken as the file only when it is
a 200 that is not HTML. The token goes only to Slack's own hosts (or the origin of ``SLACK_API_URL``, a
test's fake Slack): a redirect is followed (at most ``MAX_REDIRECTS``) only to them, and one to the
sign-in page ends as that page does. The body is read up to a limit, within a timeout, over the
gateway's one HTTP session. The token and the URL are never logged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urljoin, urlparse

import aiohttp

from bot.files import looks_like_html

logger = logging.getLogger(__name__)

SLACK_FILE_DOMAINS = ("slack.com", "slack-gov.com", "slack-files.com")
_CHUNK = 64 * 1024
MAX_REDIRECTS = 3


class DownloadFailed(Exception):
    """A file could not be downloaded. ``reason``: ``too_large``, ``not_the_file`` (Slack answered
    with its sign-in page or a redirect: the token lacks ``files:read``), ``refused`` (a URL the token
    must not be sent to), or ``failed`` (an HTTP error, a broken connection, a timeout)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Downloaded:
    data: bytes
    content_type: str  # as the server said (lower case, without parameters)
    cut: bool = False  # only the first ``max_bytes`` were read (``keep_beginning``)


class FileDownloads:
    """Downloads over the gateway's session (``SlackGateway.files``)."""

    def __init__(self, *, session: aiohttp.ClientSession, token: str, api_url: str) -> None:
        self._session = session
        self._token = token
        api = urlparse(api_url)
        self._api_origin = (api.scheme, api.hostname or "", api.port)

    def allowed(self, url: str) -> bool:
        """True for an https URL on Slack's own domains, or the origin of ``SLACK_API_URL``."""
        parsed = urlparse(url)
        host = (parsed.hostname or "").lower()
        if (parsed.scheme, host, parsed.port) == self._api_origin:
            return True
        slack_host = any(host == d or host.endswith("." + d) for d in SLACK_FILE_DOMAINS)
        return parsed.scheme == "https" and slack_host

    async def download(
        self, url: str, *, max_bytes: int, timeout: float, keep_beginning: bool = False
    ) -> Downloaded:
        """The file's bytes: at most ``max_bytes``, else ``DownloadFailed("too_large")``, or with
        ``keep_beginning`` its first ``max_bytes`` (``cut``)."""
        try:
            async with asyncio.timeout(timeout):
                return await self._download(url, max_bytes=max_bytes, keep_beginning=keep_beginning)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise DownloadFailed("failed", type(err).__name__) from None

    async def _download(self, url: str, *, max_bytes: int, keep_beginning: bool) -> Downloaded:
        headers = {"Authorization": f"Bearer {self._token}"}
        for _ in range(MAX_REDIRECTS + 1):
            if not self.allowed(url):
                raise DownloadFailed("refused", "not a Slack file address")
            # Not the session's own total: the caller's deadline (asyncio.timeout) bounds the download.
            get = self._session.get(
                url, headers=headers, allow_redirects=False, timeout=aiohttp.ClientTimeout()
            )
            async with get as resp:
                if 300 <= resp.status < 400 and resp.headers.get("Location"):
                    url = urljoin(url, resp.headers["Location"])
                    continue
                if resp.status != 200:
                    raise DownloadFailed("failed", f"HTTP {resp.status}")
                declared = resp.content_length
                if declared is not None and declared > max_bytes and not keep_beginning:
                    raise DownloadFailed("too_large", f"{declared} bytes")
                content_type = resp.content_type.lower()
                data = bytearray()
                cut = False
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    data += chunk
                    if len(data) > max_bytes:
                        if not keep_beginning:
                            raise DownloadFailed("too_large", f"over {max_bytes} bytes")
                        del data[max_bytes:]
                        cut = True
                        break
            if content_type == "text/html" or looks_like_html(bytes(data[:512])):
                # Slack's sign-in page: the token lacks files:read (or is not this workspace's).
                raise DownloadFailed("not_the_file", "an HTML page (Slack's sign-in page: no files:read?)")
            return Downloaded(bytes(data), content_type, cut)
        raise DownloadFailed("not_the_file", "too many redirects")
