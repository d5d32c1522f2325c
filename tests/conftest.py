"""Fixtures for end-to-end tests: the fakes on 127.0.0.1 and the real app (Bolt, slack_sdk, openai
clients) started in-process in HTTP mode, pointed at them by SLACK_API_URL and OPENAI_BASE_URL."""

from __future__ import annotations

import atexit
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot.app import Runtime
from bot.settings import Settings
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack

# Under pytest-xdist (scripts/test.sh runs the suite in several processes) the tests that start
# processes and servers are handed out first and the quick pure ones fill the gaps at the end.
_DISPATCH_ORDER = ("tests/process/", "tests/e2e/", "tests/contract/", "tests/unit/")
# Modules whose tests share one costly fixture: all their tests go to one worker, in order (the browser
# tests follow on from each other on one page; two deploy tests share a venv built from wheels, which
# would otherwise be built once in each worker that runs one of them). (xdist's own --dist loadgroup
# does not group with pytest 9: it renames items through an attribute pytest 9 no longer reads.)
_ONE_WORKER_MODULES = frozenset({"tests/process/test_sandbox_browser.py", "tests/process/test_deploy.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid
        return next((i for i, prefix in enumerate(_DISPATCH_ORDER) if path.startswith(prefix)), 0)

    items.sort(key=rank)  # stable: each module keeps its own order


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown to pytest without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist load`` (xdist's default), with the modules of ``_ONE_WORKER_MODULES`` kept whole: every
    other test is a unit of its own, handed to whichever worker is free (the largest units first)."""
    if config.getoption("dist") != "load":
        return None  # another --dist asked for explicitly: xdist's own
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in _ONE_WORKER_MODULES else nodeid

    return Scheduling(config, log)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What exists once the tests are collected (every imported module, the collected tests) lives to
    the end: frozen out of the garbage collector's full collections, which otherwise walk it again
    and again while the tests run (as ``bot.__main__.tune_gc`` does for the bot at its start)."""
    gc.freeze()


def pytest_configure(config: pytest.Config) -> None:
    """An xdist worker ends with a heap of everything its tests left, and the interpreter's last
    garbage collections (at its exit, after pytest's own final collection and its report of what was
    unraisable) walked it for two to three seconds while the controller waited for every worker to
    exit. Frozen at exit, the heap is simply left to the process's end."""
    if hasattr(config, "workerinput"):
        atexit.register(gc.freeze)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def model() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@dataclass
class Bot:
    runtime: Runtime
    url: str  # the Events API endpoint
    base: str

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


StartBot = Callable[..., Awaitable[Bot]]


def bot_env(slack: FakeSlack, model: FakeOpenAI, **overrides: str) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_MODEL": "fake-model",
        "BOT_SYSTEM_PROMPT": "You are a test bot.",
        "BOT_EDIT_INTERVAL_SECONDS": "0.2",
        "BOT_RETRY_BASE_SECONDS": "0.05",
        "BOT_FINAL_EDIT_DEADLINE_SECONDS": "5",
        "PORT": "0",
        # The tests written before native streams observe edits; tests of native streams (and of
        # the default) pass BOT_TRANSPORT=auto or native explicitly.
        "BOT_TRANSPORT": "edit",
    }
    env.update(overrides)
    return env


@pytest.fixture
async def start_bot(slack: FakeSlack, model: FakeOpenAI) -> AsyncIterator[StartBot]:
    runtimes: list[Runtime] = []

    async def start(**overrides: str) -> Bot:
        runtime = Runtime(Settings.from_env(bot_env(slack, model, **overrides)))
        runtimes.append(runtime)
        await runtime.start()
        port = await runtime.serve(host="127.0.0.1", port=0)
        base = f"http://127.0.0.1:{port}"
        return Bot(runtime=runtime, url=f"{base}/slack/events", base=base)

    yield start
    for runtime in runtimes:
        await runtime.stop(grace=2.0)


@pytest.fixture
async def bot(start_bot: StartBot) -> Bot:
    return await start_bot()
