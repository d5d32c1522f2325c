"""`python -m bot` as a process: configuration errors are one clear line; a configured bot serves
/healthz and answers; SIGTERM exits cleanly. Tokens never reach the logs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from sandbox.ports import free_port
from tests.conftest import bot_env
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.procs import until_ok


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "BOT_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot"], env={**clean, **env}, capture_output=True, text=True, timeout=30
    )


def test_missing_token_is_one_clear_line() -> None:
    result = run({"SLACK_SIGNING_SECRET": "x", "OPENAI_API_KEY": "sk-x"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "SLACK_BOT_TOKEN" in lines[0] and "OAuth & Permissions" in lines[0]


def test_malformed_value_names_the_variable() -> None:
    result = run(
        {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "x",
            "OPENAI_API_KEY": "sk-x",
            "BOT_TIMEOUT_SECONDS": "two minutes",
        }
    )
    assert result.returncode == 2
    assert "BOT_TIMEOUT_SECONDS" in result.stderr and "number" in result.stderr


def test_every_problem_is_a_line_of_its_own() -> None:
    result = run(
        {
            "SLACK_APP_TOKEN": "xapp-1-A1-1-x",  # Socket Mode without its bot token
            "PORT": "99999",
            "BOT_EDITS_PER_MINUTE": "60",
            "BOT_TIMEOUT_SECONDS": "soon",
        }
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("threadline: configuration error: ") for line in lines), lines
    named = [line.split(": ", 2)[2].split(" ", 1)[0] for line in lines]
    assert named == [
        "SLACK_BOT_TOKEN",
        "OPENAI_API_KEY",
        "BOT_EDITS_PER_MINUTE",
        "PORT",
        "BOT_TIMEOUT_SECONDS",
    ]
    assert "SLACK_SIGNING_SECRET" not in result.stderr


def test_slack_out_of_reach_is_not_a_configuration_error() -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_APP_TOKEN": "xapp-1",
        "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/",  # nothing listens there
        "OPENAI_API_KEY": "sk-x",
        "PORT": str(free_port()),
    }
    result = run(env)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("threadline: cannot reach Slack at ") and "network problem" in last
    assert "configuration error" not in result.stderr


async def test_process_serves_health_answers_and_stops_on_sigterm(
    slack: FakeSlack, model: FakeOpenAI
) -> None:
    port = free_port()
    env = bot_env(slack, model, PORT=str(port))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "BOT_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env={**clean, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # The process needs a moment to import and bind.
        healthy = await until_ok(
            f"http://127.0.0.1:{port}/healthz", ended=lambda: proc.returncode is not None
        )
        assert healthy is not None, "the bot exited at start"
        model.script(Reply.text("From a real process."))
        event = slack.mention_event("C1", "hi")
        status, _ = await slack.send_event(f"http://127.0.0.1:{port}/slack/events", event)
        assert status == 200
        await slack.wait_for(
            lambda: any(m.text == "From a real process." for m in slack.bot_messages("C1")), 10
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0
    log = stderr.decode()
    assert slack.bot_token not in log and "sk-test" not in log
