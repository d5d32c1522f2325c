"""Bot processes for multi-replica tests: real processes running the bot's ``main``, as ``python -m bot``
does, forked from a process that has already imported the bot.

Each replica is its own process (its own pid, sockets and memory; SIGKILL and SIGTERM reach it as they
reach ``python -m bot``), forked by a ``multiprocessing`` fork server that imported the bot and its
libraries once. Importing them costs a fresh interpreter about 1.6 s of CPU (openai's types alone most
of it), and the multi-replica tests start some forty replicas: forked, each starts in milliseconds.
The entry points themselves (``python -m bot``, the ``threadline`` console script, ``python -m bot
sandbox``) are started as fresh interpreters by the tests of those commands (tests/process/).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import multiprocessing
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess

import aiohttp

from sandbox.ports import free_port

_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(["tests.procs", "bot.__main__", "bot.app", "bot.model.openai"])


_LIVE: set[BaseProcess] = set()
importlib.import_module("multiprocessing.util")  # its exit handler is registered first: it runs last


@atexit.register  # before multiprocessing's exit handler, which would wait out a leftover bot's grace
def _kill_leftovers() -> None:
    for proc in _LIVE:
        if proc.pid is not None and proc.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)


def _log_file() -> str:
    fd, path = tempfile.mkstemp(prefix="bot-", suffix=".log")
    os.close(fd)
    return path


async def until_ok(url: str, *, ended: Callable[[], bool], timeout: float = 45.0) -> str | None:
    """GET ``url`` until it answers 200 (a process starting up: bounded, several seconds on a loaded
    machine); its body, or None when ``ended()`` says the process exited first."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            if ended():
                return None
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return await resp.text()
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered 200 in {timeout:g} s")


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "BOT_", "REDIS_"))}


def _run_bot(env: dict[str, str], log_path: str) -> None:
    """In the forked process: ``python -m bot`` with this environment, stderr to the log, no stdout."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.dup2(os.open(log_path, os.O_WRONLY | os.O_APPEND), 2)
    os.environ.clear()
    os.environ.update(env)
    from bot.__main__ import main

    sys.exit(main(["run"]))


@dataclass
class BotProcess:
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: BaseProcess | None = None
    # A file, not a pipe: a pipe nobody reads could fill and block the bot.
    log_path: str = field(default_factory=_log_file)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def returncode(self) -> int | None:
        """The exit status once the process ended (minus the signal that ended it), else None."""
        assert self.proc is not None
        self.proc.join(0)
        return self.proc.exitcode

    async def start(self) -> None:
        env = {**clean_environ(), **self.env, "PORT": str(self.port)}
        self.proc = _FORKS.Process(target=_run_bot, args=(env, self.log_path), daemon=True)
        _LIVE.add(self.proc)
        # The first start in a test process starts the fork server (it imports the bot): off the loop.
        await asyncio.to_thread(self.proc.start)
        try:
            healthy = await until_ok(
                f"http://127.0.0.1:{self.port}/healthz", ended=lambda: self.returncode is not None
            )
        except AssertionError as err:
            raise AssertionError(f"{err}: {self.output()}") from None
        if healthy is None:
            raise AssertionError(f"bot exited at start: {self.output()}")

    def output(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                return log.read().decode(errors="replace")
        except FileNotFoundError:  # closed
            return ""

    def kill(self) -> None:
        assert self.proc is not None and self.proc.pid is not None
        if self.returncode is None:  # else its pid may be another process's by now
            os.kill(self.proc.pid, signal.SIGKILL)

    async def wait(self) -> int:
        """The exit status, once the process ends (its sentinel becomes readable then)."""
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        while (code := self.returncode) is None:
            ended: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self.proc.sentinel, _resolve, ended)
            try:
                await ended
            finally:
                loop.remove_reader(self.proc.sentinel)
        return code

    async def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None and self.proc.pid is not None
        if self.returncode is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        return await asyncio.wait_for(self.wait(), timeout)

    async def close(self) -> None:
        if self.proc is not None and self.proc.pid is not None and self.returncode is None:
            self.kill()
            await self.wait()
        if self.proc is not None:
            _LIVE.discard(self.proc)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.log_path)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
