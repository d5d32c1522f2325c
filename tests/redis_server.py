"""A real ``redis-server`` for the tests: its own port and data directory, AOF on, no RDB snapshots.

``stop`` shuts it down gracefully (the AOF is flushed), ``start`` brings it back on the same port and
directory, so ``restart`` keeps every key, as a production Redis with ``appendonly yes`` would.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from sandbox.ports import free_port


class RedisServer:
    def __init__(self, binary: str | None = None, *, args: Sequence[str] = ()) -> None:
        """``args``: more ``redis-server`` options, after (and so over) the defaults above, e.g.
        ``("--appendonly", "no")``."""
        found = binary or shutil.which("redis-server")
        if found is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = found
        # Cluster mode listens on port + 10,000 too, so its port must be 55535 or less.
        self.port = free_port()
        while "cluster-enabled" in " ".join(args) and self.port > 55535:
            self.port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="threadline-redis-")
        self.dir = Path(self._tmp.name)
        self._proc: subprocess.Popen[bytes] | None = None
        self.args = list(args)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.dir / 'redis.sock'}?db=0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, timeout: float = 10.0) -> None:
        if self.running:
            return
        self._proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--unixsocket",
                str(self.dir / "redis.sock"),
                "--protected-mode",
                "no",
                "--logfile",
                str(self.dir / "redis.log"),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Process start-up: a bounded loop of short waits until PING answers (not test synchronisation).
        deadline = time.monotonic() + timeout
        while not self._pong():
            if self._proc.poll() is not None:
                log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}:\n{log}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer PING within {timeout}s")
            time.sleep(0.02)

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, timeout: float = 10.0) -> None:
        """Graceful shutdown (SIGTERM): Redis fsyncs the AOF before it exits."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.kill()
        self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
