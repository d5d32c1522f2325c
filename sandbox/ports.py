"""A free TCP port, the one helper the sandbox, the benchmark and the tests share for it."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (the OS's choice for port 0). Another process may
    take it before the caller binds it: callers that start a server on it retry on a clash."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
