"""``python -m bot check`` against the fakes: good settings pass (exit 0); each broken setting is named
with its fix (exit 1). Nothing secret is printed."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.check import MANIFEST_BOT_SCOPES, Check, _model_problem, manifest_bot_scopes, render, run_checks
from bot.check import main as check_main
from bot.errors import ModelUnreachable
from bot.redis import setup_problems
from bot.settings import Settings
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest.yml"
MANIFEST_SCOPES = manifest_bot_scopes(MANIFEST.read_text())


@pytest.fixture
async def workspace() -> AsyncIterator[FakeSlack]:
    """A workspace whose bot token has exactly the manifest's scopes."""
    async with FakeSlack(scopes=MANIFEST_SCOPES) as fake:
        yield fake


@pytest.fixture
async def narrow() -> AsyncIterator[FakeSlack]:
    """A workspace whose app was installed before feedback came: no reactions:read."""
    async with FakeSlack(scopes=[s for s in MANIFEST_SCOPES if s != "reactions:read"]) as fake:
        yield fake


def env_for(slack: FakeSlack, model: FakeOpenAI, **overrides: str) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": model.api_key,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_MODEL": "fake-model",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_manifest_scopes_are_read_without_a_yaml_library() -> None:
    text = "oauth_config:\n  scopes:\n    user: [a]\n    bot: ['x:read', y]\nsettings:\n  bot: [no]\n"
    assert manifest_bot_scopes(text) == ["x:read", "y"]


def test_the_built_in_scopes_are_the_manifests() -> None:
    # An installed package has no manifest.yml: the check compares with this copy, kept equal here.
    assert list(MANIFEST_BOT_SCOPES) == MANIFEST_SCOPES


def manifest_bot_events(text: str) -> list[str]:
    """``settings.event_subscriptions.bot_events`` of the manifest (a list of ``- name`` lines)."""
    events: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.strip() == "bot_events:":
            inside = True
        elif inside and line.strip().startswith("- "):
            events.append(line.strip()[2:].split("#")[0].strip())
        elif inside and line.strip():
            break
    return events


def test_the_readme_lists_the_manifests_scopes_and_events() -> None:
    text = MANIFEST.read_text()
    events = manifest_bot_events(text)
    assert {"app_mention", "message.im", "message.channels", "message.groups"} <= set(events)
    readme = (ROOT / "README.md").read_text()
    listed = readme[readme.index("## Create the Slack app") :].split("\n2. ", 1)[0]
    for name in [*MANIFEST_SCOPES, *events]:
        assert f"`{name}`" in listed, name
    # The fake Slack's default scopes are the manifest's, and it sends the messages it subscribes to.
    assert set(FakeSlack().scopes) <= set(MANIFEST_SCOPES)
    assert set(FakeSlack().bot_events) <= set(events)


async def test_good_settings_pass(workspace: FakeSlack, model: FakeOpenAI) -> None:
    checks = by_name(await run_checks(env_for(workspace, model)))
    assert [c.name for c in checks.values() if c.ok is False] == []
    assert checks["slack auth"].ok and "T0001" in checks["slack auth"].detail
    assert checks["slack scopes"].ok
    assert checks["model"].ok and "fake-model" in checks["model"].detail
    assert checks["redis"].ok is None  # not configured
    probe = model.requests[-1]
    assert probe["max_tokens"] == 1 and not probe.get("stream")  # one token, not streamed


async def test_broken_settings_are_named_with_their_fix(narrow: FakeSlack, model: FakeOpenAI) -> None:
    slack = narrow
    env = env_for(slack, model, OPENAI_API_KEY="sk-wrong-key-123", REDIS_URL="redis://127.0.0.1:1/0")
    checks = by_name(await run_checks(env))
    assert checks["slack auth"].ok
    assert checks["slack scopes"].ok is False
    assert "missing reactions:read" in checks["slack scopes"].detail
    assert checks["model"].ok is False and "OPENAI_API_KEY" in checks["model"].detail
    assert checks["redis"].ok is False and "REDIS_URL" in checks["redis"].detail
    table = render(list(checks.values()))
    assert "3 to fix: slack scopes, model, redis" in table
    assert "sk-wrong-key-123" not in table and slack.bot_token not in table


async def test_a_rejected_token_and_socket_mode(workspace: FakeSlack, model: FakeOpenAI) -> None:
    checks = by_name(await run_checks(env_for(workspace, model, SLACK_BOT_TOKEN="xoxb-not-this-one")))
    assert checks["slack auth"].ok is False and "invalid_auth" in checks["slack auth"].detail
    assert "slack scopes" not in checks

    socket_env = env_for(workspace, model, SLACK_APP_TOKEN=workspace.app_token, SLACK_SIGNING_SECRET="")
    checks = by_name(await run_checks(socket_env))
    assert checks["socket mode"].ok, checks["socket mode"]
    wrong_app = env_for(workspace, model, SLACK_APP_TOKEN="xapp-wrong", SLACK_SIGNING_SECRET="")
    checks = by_name(await run_checks(wrong_app))
    assert checks["socket mode"].ok is False and "SLACK_APP_TOKEN" in checks["socket mode"].detail


async def test_a_configuration_error_stops_the_checks(workspace: FakeSlack, model: FakeOpenAI) -> None:
    checks = await run_checks(env_for(workspace, model, BOT_USER_RATE="lots"))
    assert len(checks) == 1 and checks[0].ok is False
    assert checks[0].detail.startswith("BOT_USER_RATE must look like 20/10m")


async def run_check(env: dict[str, str]) -> tuple[int, str]:
    """``python -m bot check`` in a subprocess (no ``.env`` from the working directory)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "BOT_", "REDIS_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check",  # no --manifest: the built-in scopes, as an installed package would use
        env={**clean, **env, "PYTHONPATH": str(ROOT)},
        cwd=str(ROOT / "tests"),  # no .env there
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_the_command_prints_a_table_and_exits_0_or_1(
    workspace: FakeSlack, narrow: FakeSlack, model: FakeOpenAI
) -> None:
    # The command itself, in a subprocess, on a broken workspace (its token lacks a scope) ...
    bad, bad_out = await run_check(env_for(narrow, model))
    assert bad == 1, bad_out
    assert "FIX" in bad_out and "reactions:read" in bad_out
    # ... and its main (in a thread: it runs its own event loop) on a good one.
    buffer = io.StringIO()
    good = await asyncio.to_thread(check_main, [], env=env_for(workspace, model), out=buffer)
    assert good == 0, buffer.getvalue()
    assert "all checks passed" in buffer.getvalue() and "slack scopes" in buffer.getvalue()


async def test_scopes_that_cannot_be_compared_are_to_fix(
    workspace: FakeSlack, model: FakeOpenAI, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "manifest.yml"
    checks = by_name(await run_checks(env_for(workspace, model), manifest=missing))
    assert checks["slack scopes"].ok is False
    assert "not found" in checks["slack scopes"].detail and "--manifest" in checks["slack scopes"].detail
    empty = tmp_path / "empty.yml"
    empty.write_text("display_information:\n  name: Threadline\n")
    checks = by_name(await run_checks(env_for(workspace, model), manifest=empty))
    assert checks["slack scopes"].ok is False and "lists no" in checks["slack scopes"].detail
    # A good --manifest is read and named.
    checks = by_name(await run_checks(env_for(workspace, model), manifest=MANIFEST))
    assert checks["slack scopes"].ok and "scopes of manifest.yml" in checks["slack scopes"].detail

    buffer = io.StringIO()
    code = await asyncio.to_thread(
        check_main, ["--manifest", str(missing)], env=env_for(workspace, model), out=buffer
    )
    assert code == 1, buffer.getvalue()
    assert "1 to fix: slack scopes" in buffer.getvalue()


@pytest.fixture
async def headerless_slack() -> AsyncIterator[str]:
    """A Slack Web API stand-in whose auth.test accepts the token but reports no x-oauth-scopes."""

    async def auth_test(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "user": "threadline", "team": "Proxy", "team_id": "T9"})

    app = web.Application()
    app.router.add_post("/api/auth.test", auth_test)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/api/"
    finally:
        await runner.cleanup()


async def test_no_scopes_header_is_to_fix(
    workspace: FakeSlack, model: FakeOpenAI, headerless_slack: str
) -> None:
    checks = by_name(await run_checks(env_for(workspace, model, SLACK_API_URL=headerless_slack)))
    assert checks["slack auth"].ok
    scopes = checks["slack scopes"]
    assert scopes.ok is False
    assert "x-oauth-scopes" in scopes.detail and "SLACK_API_URL" in scopes.detail
    assert "1 to fix: slack scopes" in render(list(checks.values()))


# -- issue 15 item 7: every problem at once, true wording, Redis as docs/redis.md requires ----------


async def test_every_configuration_problem_is_a_row() -> None:
    env = {  # Socket Mode (the manifest's default) without its bot token, no model key, bad values
        "SLACK_APP_TOKEN": "xapp-1-A1-1-x",
        "PORT": "99999",
        "BOT_EDITS_PER_MINUTE": "60",
        "BOT_TIMEOUT_SECONDS": "soon",
    }
    checks = await run_checks(env)
    assert all(c.name == "configuration" and c.ok is False for c in checks)
    named = [c.detail.split(" ", 1)[0] for c in checks]
    assert named == [
        "SLACK_BOT_TOKEN",
        "OPENAI_API_KEY",
        "BOT_EDITS_PER_MINUTE",
        "PORT",
        "BOT_TIMEOUT_SECONDS",
    ]
    assert not any("SLACK_SIGNING_SECRET" in c.detail for c in checks)
    assert "5 to fix: configuration" in render(checks)


async def test_slack_out_of_reach_is_a_network_problem(workspace: FakeSlack, model: FakeOpenAI) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/api/"
    checks = by_name(await run_checks(env_for(workspace, model, SLACK_API_URL=closed)))
    detail = checks["slack auth"].detail
    assert checks["slack auth"].ok is False and "network problem" in detail, detail
    # Slack answering 500: Slack's trouble, not a rejected token.
    workspace.fail("auth.test", status=500)
    checks = by_name(await run_checks(env_for(workspace, model)))
    detail = checks["slack auth"].detail
    assert checks["slack auth"].ok is False and "cannot reach Slack" in detail and "HTTP 500" in detail, (
        detail
    )
    assert "rejected" not in detail


def test_the_model_line_names_openai_base_url_only_when_it_is_set() -> None:
    base = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "OPENAI_API_KEY": "sk-x"}
    unset = _model_problem(ModelUnreachable("ConnectError"), Settings.from_env(base))
    assert "OPENAI_BASE_URL" not in unset and "api.openai.com" in unset and "network" in unset
    own = Settings.from_env({**base, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert "OPENAI_BASE_URL" in _model_problem(ModelUnreachable("ConnectError"), own)


@pytest.mark.parametrize(
    ("args", "ok", "words"),
    [
        ((), True, ["appendonly yes", "noeviction", "one primary"]),
        (("--appendonly", "no"), False, ["appendonly is off"]),
        (("--maxmemory-policy", "allkeys-lru"), False, ["allkeys-lru", "set noeviction"]),
        (("--cluster-enabled", "yes"), False, ["Redis Cluster"]),
        (("--maxmemory-policy", "volatile-lru"), True, ["note: volatile-lru may evict conversations"]),
        (
            ("--appendonly", "no", "--maxmemory-policy", "allkeys-random"),
            False,
            ["appendonly is off", "allkeys-random"],  # every problem of the server in one run
        ),
    ],
)
async def test_redis_is_checked_against_docs_redis_md(
    workspace: FakeSlack, model: FakeOpenAI, args: tuple[str, ...], ok: bool, words: list[str]
) -> None:
    with RedisServer(args=args) as server:
        checks = by_name(await run_checks(env_for(workspace, model, REDIS_URL=server.url)))
    assert checks["redis"].ok
    setup = checks["redis setup"]
    assert setup.ok is ok, setup
    for word in words:
        assert word in setup.detail, setup.detail


def test_redis_requirements_from_info() -> None:
    good = {
        "redis_version": "7.2.4",
        "aof_enabled": 1,
        "maxmemory_policy": "noeviction",
        "cluster_enabled": 0,
    }
    assert setup_problems(good) == ([], [])
    old, _ = setup_problems({**good, "redis_version": "6.0.16"})
    assert len(old) == 1 and "older than 6.2" in old[0]
    assert setup_problems({**good, "redis_version": "6.2.0"}) == ([], [])
    unknown, _ = setup_problems({})  # INFO told nothing: a check that cannot tell does not pass
    assert len(unknown) == 4
