"""Runs the sandbox: the workspace (page + fake Slack) in this process, the real bot as a subprocess.

The bot is started exactly as in production (``python -m bot``), in HTTP mode, with its Slack settings
pointed at the workspace (``SLACK_API_URL``, a fresh bot token and signing secret) and on a free port; the
workspace delivers signed events to it. Its model is the one configured (``OPENAI_API_KEY`` /
``OPENAI_BASE_URL`` in the environment or ``.env``), else the built-in demo model. Everything else in the
environment (``BOT_*``, ``REDIS_URL``, ``LOG_LEVEL``) passes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

import aiohttp

from bot.settings import environment
from sandbox.demo_model import DEMO_MODEL_NAME, WORD_SECONDS, DemoModel
from sandbox.ports import free_port
from sandbox.workspace import Workspace

__all__ = ["Sandbox", "bot_attempts", "is_placeholder", "model_configured", "slack_configured"]

PORT_ATTEMPTS = 20  # $PORT, then the next ports, until one is free
BOT_START_SECONDS = 60.0
BOT_STOP_SECONDS = 25.0


def is_placeholder(value: str | None) -> bool:
    """Empty, or an example value such as ``xoxb-...`` from ``.env.example``."""
    value = (value or "").strip()
    return not value or value.endswith(("...", "…"))


def slack_configured(env: Mapping[str, str]) -> bool:
    """Whether Slack credentials are configured (then the run command runs the real bot)."""
    return not is_placeholder(env.get("SLACK_BOT_TOKEN"))


def model_configured(env: Mapping[str, str]) -> bool:
    """Whether a real model is configured (else the sandbox uses its demo model)."""
    return not is_placeholder(env.get("OPENAI_API_KEY")) or not is_placeholder(env.get("OPENAI_BASE_URL"))


def bot_attempts(env: Mapping[str, str]) -> int:
    """The bot's ``BOT_MAX_ATTEMPTS`` (the attempts of one answer's model call), default 3. A malformed
    value counts as the default: the bot refuses to start with it anyway."""
    try:
        return max(1, int(env.get("BOT_MAX_ATTEMPTS", "").strip() or 3))
    except ValueError:
        return 3


def demo_word_seconds(env: Mapping[str, str]) -> float:
    """The demo model's pause between words, ``SANDBOX_DEMO_WORD_SECONDS`` (default 0.03: an answer takes
    about 6 s); the tests set it shorter. A malformed or negative value counts as the default."""
    try:
        seconds = float(env.get("SANDBOX_DEMO_WORD_SECONDS", "").strip() or WORD_SECONDS)
    except ValueError:
        return WORD_SECONDS
    return seconds if math.isfinite(seconds) and seconds >= 0 else WORD_SECONDS


class Sandbox:
    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        bot_command: Sequence[str] = (sys.executable, "-m", "bot"),
        out: TextIO = sys.stdout,
    ) -> None:
        self.env = dict(environment() if env is None else env)
        self.port = int(self.env.get("PORT") or 3000) if port is None else port
        self.host = host
        self.bot_command = list(bot_command)
        self.out = out
        self.workspace = Workspace(host=host)
        self.demo: DemoModel | None = None
        self.bot: asyncio.subprocess.Process | None = None
        self.bot_port: int | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return self.workspace.url

    def say(self, line: str) -> None:
        print(f"[sandbox] {line}", file=self.out, flush=True)

    async def start(self) -> None:
        """Serve the workspace, start the model and the bot; returns once the bot is healthy. Raises
        ``RuntimeError`` if the bot exits or never becomes healthy."""
        await self._serve_workspace()
        bot_env = self._bot_env()
        if self.demo is None and not model_configured(self.env):
            # A failing demo question fails every attempt of the bot's first answer, so its Retry works.
            self.demo = DemoModel(
                host=self.host,
                max_attempts=bot_attempts(self.env),
                word_seconds=demo_word_seconds(self.env),
            )
            await self.demo.start()
            bot_env.update(
                OPENAI_API_KEY=self.demo.api_key,
                OPENAI_BASE_URL=self.demo.base_url,
                OPENAI_MODEL=DEMO_MODEL_NAME,
            )
            self.workspace.set_status(model="demo model (set OPENAI_API_KEY for real answers)", demo=True)
            self.say("no OPENAI_API_KEY or OPENAI_BASE_URL configured: answers come from the demo model")
        else:
            model = self.env.get("OPENAI_MODEL") or "gpt-4o-mini"
            where = self.env.get("OPENAI_BASE_URL") or "OpenAI"
            self.workspace.set_status(model=f"{model} at {where}", demo=False)
            self.say(f"model: {model} at {where}")
        self.bot_port = free_port(self.host)
        bot_env["PORT"] = str(self.bot_port)
        self.say(f"starting the bot: {' '.join(self.bot_command)} (HTTP mode on port {self.bot_port})")
        self.bot = await asyncio.create_subprocess_exec(
            *self.bot_command,
            env=bot_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the sandbox only; it stops the bot in order
        )
        self._pump = asyncio.create_task(self._forward_output(self.bot))
        await self._wait_healthy(self.bot, self.bot_port)
        self.workspace.app_url = f"http://{self.host}:{self.bot_port}/slack/events"
        self.workspace.set_status(bot="ready")

    async def _serve_workspace(self) -> None:
        last: OSError | None = None
        ports = [0] if self.port == 0 else range(self.port, self.port + PORT_ATTEMPTS)
        for port in ports:
            try:
                await self.workspace.start(port)
                return
            except OSError as err:
                if err.errno != errno.EADDRINUSE:
                    raise
                last = err
        raise RuntimeError(f"ports {self.port}-{self.port + PORT_ATTEMPTS - 1} are all taken") from last

    def _bot_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The bot reads .env itself; the values set here win over it.
        env.update(
            SLACK_BOT_TOKEN=self.workspace.bot_token,
            SLACK_SIGNING_SECRET=self.workspace.signing_secret,
            SLACK_API_URL=self.workspace.api_url,
            SLACK_APP_TOKEN="",  # HTTP mode: events come signed from the workspace
            PYTHONUNBUFFERED="1",
        )
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):  # an example value counts as none
            if is_placeholder(self.env.get(name)) and name in self.env:
                env[name] = ""
        return env

    async def _forward_output(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            print(f"[bot] {raw.decode(errors='replace').rstrip()}", file=self.out, flush=True)

    async def _wait_healthy(self, proc: asyncio.subprocess.Process, port: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BOT_START_SECONDS
        async with aiohttp.ClientSession() as http:
            while loop.time() < deadline:
                if proc.returncode is not None:
                    break
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://{self.host}:{port}/healthz") as resp:
                        if resp.status == 200:
                            return
                # The bot needs a moment to import and bind; nothing to wait on but its port.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 0.1)
        self.workspace.set_status(bot="stopped", exit_code=proc.returncode)
        if proc.returncode is not None:
            if self._pump is not None:
                await self._pump  # its last words (a configuration error) reach the console first
            raise RuntimeError(f"the bot exited with code {proc.returncode} before it was ready")
        raise RuntimeError(f"the bot was not healthy after {BOT_START_SECONDS:g} s")

    async def wait_bot(self) -> int:
        """Wait until the bot exits; its exit code."""
        assert self.bot is not None
        code = await self.bot.wait()
        self.workspace.app_url = None
        self.workspace.set_status(bot="stopped", exit_code=code)
        return code

    async def stop(self) -> None:
        """Stop the bot (SIGTERM: it finishes answers in flight), then the demo model, then the workspace."""
        self.workspace.app_url = None
        if self.bot is not None and self.bot.returncode is None:
            self.workspace.set_status(bot="stopping")
            with contextlib.suppress(ProcessLookupError):
                self.bot.send_signal(signal.SIGTERM)
        if self.bot is not None:
            try:
                await asyncio.wait_for(self.bot.wait(), BOT_STOP_SECONDS)
            except TimeoutError:
                self.say("the bot did not stop in time: killing it")
                self.kill()
                await self.bot.wait()
        if self.demo is not None:
            # Only now: the bot has finished the answers in flight, which need the demo model.
            await self.demo.stop()
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pump, 5)
        await self.workspace.stop()

    def kill(self) -> None:
        if self.bot is not None and self.bot.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.bot.kill()


async def run(sandbox: Sandbox, *, open_browser: bool = False) -> int:
    """``python -m bot sandbox``: start everything, print the page's address, run until Ctrl-C / SIGTERM
    (a second one kills the bot at once) or until the bot exits."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            sandbox.kill()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        starting = asyncio.create_task(sandbox.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await starting
            return 0
        stopping.cancel()
        try:
            starting.result()
        except RuntimeError as err:
            sandbox.say(f"cannot start: {err}")
            return 1
        sandbox.say(f"Threadline sandbox is ready. Open {sandbox.url} in your browser. Ctrl-C stops it.")
        if open_browser:
            import webbrowser

            webbrowser.open(sandbox.url)
        bot_exit = asyncio.create_task(sandbox.wait_bot())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({bot_exit, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if bot_exit.done():
            sandbox.say(f"the bot exited with code {bot_exit.result()}; stopping the sandbox")
            return bot_exit.result() or 1
        bot_exit.cancel()
        sandbox.say("stopping: the bot finishes its answers (Ctrl-C again to quit at once)")
        return 0
    finally:
        await sandbox.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
