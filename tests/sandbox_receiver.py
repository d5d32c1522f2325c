"""The bot's side of the sandbox's workspace, for the tests that drive the workspace without a bot: a
recording Events API endpoint (``Receiver``), the ``receiver``/``workspace``/``http`` fixtures (import
them into a test module) and ``ui`` (a call of the page's endpoints)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web

from sandbox.slack import sign_request
from sandbox.workspace import Workspace

JSONDict = dict[str, Any]


@dataclass
class Delivery:
    content_type: str
    body: str
    timestamp: str
    signature: str

    def json(self) -> JSONDict:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body).items()}


@dataclass
class Receiver:
    """A stand-in for the bot's Events API endpoint: records what it gets, answers ``reply``."""

    url: str = ""
    got: list[Delivery] = field(default_factory=list)
    reply: tuple[int, str] = (200, "")
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(
            Delivery(
                content_type=request.content_type,
                body=(await request.read()).decode(),
                timestamp=request.headers["X-Slack-Request-Timestamp"],
                signature=request.headers["X-Slack-Signature"],
            )
        )
        self.changed.set()
        status, text = self.reply
        return web.Response(status=status, text=text, content_type="application/json" if text else None)

    async def wait(self, count: int) -> list[Delivery]:
        async with asyncio.timeout(5):
            while len(self.got) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.got


def assert_signed(ws: Workspace, delivery: Delivery) -> None:
    assert delivery.signature == sign_request(ws.signing_secret, delivery.timestamp, delivery.body)
    assert abs(int(delivery.timestamp) - time.time()) < 60


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/slack/events", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield rec
    await runner.cleanup()


@pytest.fixture
async def workspace(receiver: Receiver) -> AsyncIterator[Workspace]:
    ws = Workspace()
    await ws.start()
    ws.app_url = receiver.url
    yield ws
    await ws.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def ui(http: aiohttp.ClientSession, ws: Workspace, path: str, **body: Any) -> JSONDict:
    async with http.post(f"{ws.url}{path}", json=body) as resp:
        assert resp.status == 200, await resp.text()
        data = await resp.json()
        assert isinstance(data, dict)
        return data
