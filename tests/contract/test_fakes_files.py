"""The fake Slack's files held to what Slack does, through the bot's own downloader (``FileDownloads``):
``url_private`` gives the bytes to the bot token only; any other token is redirected to the sign-in page
(or served that page), which the downloader recognises; a file's HTTP error is an error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.gateway.files import DownloadFailed, FileDownloads
from sandbox.slack_files import sample_png
from tests.fakes.slack import FakeSlack

PNG = sample_png()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def downloads(slack: FakeSlack, session: aiohttp.ClientSession, token: str | None = None) -> FileDownloads:
    return FileDownloads(session=session, token=token or slack.bot_token, api_url=slack.api_url)


async def test_the_bot_token_gets_the_bytes(slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    image = slack.add_file("a.png", PNG)
    got = await downloads(slack, session).download(image["url_private_download"], max_bytes=10**6, timeout=5)
    assert got.data == PNG and got.content_type == "image/png" and not got.cut


@pytest.mark.parametrize("login_page", ["redirect", "html"])
async def test_another_token_gets_the_sign_in_page_and_it_is_recognised(
    slack: FakeSlack, session: aiohttp.ClientSession, login_page: str
) -> None:
    slack.login_page = login_page
    image = slack.add_file("a.png", PNG)
    with pytest.raises(DownloadFailed) as failed:
        await downloads(slack, session, "xoxb-other").download(
            image["url_private"], max_bytes=10**6, timeout=5
        )
    assert failed.value.reason == "not_the_file"
    assert "xoxb-other" not in str(failed.value)
    assert [(d.authorized, d.status) for d in slack.file_downloads] == [
        (False, 302 if login_page == "redirect" else 200)
    ]


async def test_a_token_without_files_read_gets_the_sign_in_page(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    slack.scopes.remove("files:read")
    image = slack.add_file("a.png", PNG)
    with pytest.raises(DownloadFailed) as failed:
        await downloads(slack, session).download(image["url_private"], max_bytes=10**6, timeout=5)
    assert failed.value.reason == "not_the_file"


async def test_limits_errors_and_foreign_addresses(slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    files = downloads(slack, session)
    image = slack.add_file("a.png", PNG)
    with pytest.raises(DownloadFailed) as failed:
        await files.download(image["url_private"], max_bytes=100, timeout=5)
    assert failed.value.reason == "too_large"
    text = slack.add_file("a.txt", b"x" * 1000)
    got = await files.download(text["url_private"], max_bytes=100, timeout=5, keep_beginning=True)
    assert got.data == b"x" * 100 and got.cut
    slack.fail_file(text["id"], 500)
    with pytest.raises(DownloadFailed) as failed:
        await files.download(text["url_private"], max_bytes=100, timeout=5)
    assert failed.value.reason == "failed"
    before = len(slack.file_downloads)
    with pytest.raises(DownloadFailed) as failed:
        await files.download("https://evil.example/files-pri/a.png", max_bytes=100, timeout=5)
    assert failed.value.reason == "refused" and len(slack.file_downloads) == before


async def test_a_slow_file_is_given_up_at_the_timeout(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    image = slack.add_file("a.png", PNG)
    slack.latency["files"] = 30.0
    with pytest.raises(DownloadFailed) as failed:
        await downloads(slack, session).download(image["url_private"], max_bytes=10**6, timeout=0.2)
    assert failed.value.reason == "failed" and "Timeout" in failed.value.detail


async def test_an_unreachable_server_is_a_failed_download(session: aiohttp.ClientSession) -> None:
    closed = FileDownloads(session=session, token="xoxb-t", api_url="http://127.0.0.1:9/api/")
    with pytest.raises(DownloadFailed) as failed:
        await closed.download("http://127.0.0.1:9/files-pri/T1-F1/a.png", max_bytes=10, timeout=2)
    assert failed.value.reason == "failed"
