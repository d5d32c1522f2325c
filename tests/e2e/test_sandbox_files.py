"""The sandbox shows files (issue 17): a sample image or text file attached from the composer is shared
as Slack shares files, and the demo model, behind the real bot (in-process), says what it received."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.app import Runtime
from bot.settings import Settings
from sandbox.demo_model import DEMO_MODEL_NAME, DemoModel, received
from sandbox.slack_files import sample_png
from sandbox.workspace import SAMPLES, Workspace
from tests.conftest import bot_env

JSONDict = dict[str, Any]


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[Workspace, DemoModel]]:
    workspace = Workspace()
    await workspace.start()
    demo = DemoModel(word_seconds=0.0, first_word_seconds=0.0)
    await demo.start()
    env = bot_env(workspace, demo, OPENAI_API_KEY=demo.api_key, OPENAI_MODEL=DEMO_MODEL_NAME)
    runtime = Runtime(Settings.from_env(env))
    await runtime.start()
    port = await runtime.serve(host="127.0.0.1", port=0)
    workspace.app_url = f"http://127.0.0.1:{port}/slack/events"
    yield workspace, demo
    await runtime.stop(grace=2.0)
    await demo.stop()
    await workspace.stop()


async def post(workspace: Workspace, **body: Any) -> JSONDict:
    async with aiohttp.ClientSession() as http, http.post(f"{workspace.url}/ui/post", json=body) as resp:
        assert resp.status == 200, await resp.text()
        data = await resp.json()
        assert isinstance(data, dict)
        return data


def answer(workspace: Workspace, channel: str, ts: str) -> str:
    return "\n".join(m.text for m in workspace.thread(channel, ts) if m.user == workspace.bot_user_id)


async def test_an_attached_sample_image_is_shared_and_the_demo_model_says_it_got_it(
    sandbox: tuple[Workspace, DemoModel],
) -> None:
    workspace, _ = sandbox
    posted = await post(workspace, channel="D0001", text="what is this?", attach=["image"])
    ts = str(posted["ts"])
    got = f"I got 1 image (sample.png, {len(sample_png()) / 1000:.1f} KB)"
    await workspace.wait_for(lambda: got in answer(workspace, "D0001", ts), 15)
    event = next(p for kind, p in workspace.deliveries if kind == "event")
    assert event["subtype"] == "file_share" and event["files"][0]["name"] == "sample.png"
    assert [(d.authorized, d.status) for d in workspace.file_downloads] == [(True, 200)]
    shown = workspace.message_json(workspace.message("D0001", ts))
    assert shown["files"] == [{"name": "sample.png", "mimetype": "image/png", "size": len(sample_png())}]


async def test_a_sample_file_alone_in_a_channel_mention(sandbox: tuple[Workspace, DemoModel]) -> None:
    workspace, demo = sandbox
    posted = await post(workspace, channel="C0001", text="@Threadline", attach=["text", "image"])
    ts = str(posted["ts"])
    await workspace.wait_for(lambda: "1 text file (notes.md)" in answer(workspace, "C0001", ts), 15)
    assert "I got 1 image (sample.png" in answer(workspace, "C0001", ts)
    assert SAMPLES["text"][1].decode() in demo.requests[-1]["messages"][-1]["content"][0]["text"]


async def test_the_composer_refuses_unknown_attachments(sandbox: tuple[Workspace, DemoModel]) -> None:
    workspace, _ = sandbox
    async with aiohttp.ClientSession() as http:
        body = {"channel": "D0001", "text": "hi", "attach": ["/etc/passwd"]}
        async with http.post(f"{workspace.url}/ui/post", json=body) as resp:
            assert resp.status == 400
        async with http.post(f"{workspace.url}/ui/post", json={"channel": "D0001", "text": ""}) as resp:
            assert resp.status == 400  # nothing typed, nothing attached


def test_the_demo_model_says_when_it_got_only_an_images_name() -> None:
    text_only = {"messages": [{"role": "user", "content": "<@U1>: hi\n\n[image: a.png]"}]}
    assert received(text_only) == "I got no image, only the name of a.png: the bot sent the text only."
    assert received({"messages": [{"role": "user", "content": "hi"}]}) == ""
