"""Reads typed values out of an environment mapping for ``Settings.from_env``.

Every method returns a usable value; a missing or malformed variable is recorded in ``errors``
(a ``ConfigError`` naming the variable and the fix) and the default is returned instead, so one
reading finds every problem and the operator can fix them all in one go.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TypeVar
from urllib.parse import urlparse

from bot.errors import ConfigError
from bot.limits.policy import Rate, parse_rate

T = TypeVar("T")
PORT_MAX = 65535


class EnvReader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[ConfigError] = []

    def bad(self, name: str, problem: str, fallback: T) -> T:
        """Record that ``name`` is wrong; return ``fallback`` so reading goes on."""
        self.errors.append(ConfigError(name, problem))
        return fallback

    def present(self, name: str) -> bool:
        return bool(self.env.get(name, "").strip())

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "").strip()
        return value if value else default

    def number(
        self, name: str, default: float, *, minimum: float = 0.0, maximum: float | None = None, why: str = ""
    ) -> float:
        """A number of seconds (or a rate) greater than ``minimum``, at most ``maximum``; finite."""
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            return self.bad(name, f"must be a number of seconds, got {raw!r}", default)
        if not math.isfinite(value):
            return self.bad(name, f"must be a finite number, got {raw!r}", default)
        if not value > minimum:
            return self.bad(name, f"must be greater than {minimum:g}, got {raw!r}", default)
        if maximum is not None and value > maximum:
            return self.bad(name, f"must be at most {maximum:g}{why}, got {raw!r}", default)
        return value

    def integer(
        self, name: str, default: int, *, minimum: int = 1, maximum: int | None = None, why: str = ""
    ) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            return self.bad(name, f"must be a whole number, got {raw!r}", default)
        if value < minimum:
            return self.bad(name, f"must be at least {minimum}, got {raw!r}", default)
        if maximum is not None and value > maximum:
            return self.bad(name, f"must be at most {maximum}{why}, got {raw!r}", default)
        return value

    def port(self, name: str, default: int | None) -> int | None:
        """A TCP port, 0 (any free port) to 65535."""
        raw = self.text(name)
        if raw is None:
            return default
        if not raw.isdigit() or int(raw) > PORT_MAX:
            return self.bad(
                name, f"must be a port number from 0 to {PORT_MAX} (0: any free port), got {raw!r}", default
            )
        return int(raw)

    def host(self, name: str, default: str) -> str:
        """An address to bind: an IP address or a host name (no scheme, port or path)."""
        raw = self.text(name, default) or default
        if not re.fullmatch(r"[A-Za-z0-9._-]+|\[?[0-9A-Fa-f:.]+\]?", raw) or raw.startswith(("-", ".")):
            return self.bad(
                name, f"must be an address to listen on, like 0.0.0.0, 127.0.0.1 or ::, got {raw!r}", default
            )
        return raw.strip("[]")

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        return self.bad(name, f"must be true or false, got {raw!r}", default)

    def emoji(self, name: str, default: str) -> str:
        raw = (self.text(name, default) or default).strip(":")
        if not re.fullmatch(r"[a-z0-9_+'-]+", raw):
            problem = f"must be an emoji name like {default!r} (no colons needed), got {raw!r}"
            return self.bad(name, problem, default)
        return raw

    def url(self, name: str, default: str | None, *, schemes: tuple[str, ...]) -> str | None:
        raw = self.text(name, default)
        if raw is None:
            return None
        parsed = urlparse(raw)
        if parsed.scheme not in schemes or not (parsed.netloc or parsed.scheme == "unix"):
            wanted = " or ".join(f"{s}://" for s in schemes)
            return self.bad(name, f"must be a URL starting with {wanted}, got {raw!r}", default)
        return raw

    def token(self, name: str, prefix: str, where: str, *, missing: str = "") -> str:
        """A token that must start with ``prefix``; ``missing`` is said when it is not set at all."""
        value = self.text(name)
        if value is None:
            problem = missing or f"is missing: set it to the {prefix}… token from {where}"
            return self.bad(name, problem, "")
        if not value.startswith(prefix):
            return self.bad(name, f"must start with {prefix!r}: copy the token from {where}", "")
        return value

    def rate(self, name: str) -> Rate | None:
        raw = self.text(name)
        if raw is None:
            return None
        try:
            return parse_rate(raw)
        except ValueError:
            problem = f"must look like 20/10m (questions per window; units s, m, h, d), got {raw!r}"
            return self.bad(name, problem, None)

    def optional_integer(self, name: str) -> int | None:
        return self.integer(name, 0) if self.text(name) is not None else None

    def ids(
        self, name: str, pattern: str, example: str, *, extra: frozenset[str] = frozenset()
    ) -> frozenset[str]:
        raw = self.text(name)
        if raw is None:
            return frozenset()
        items = [item.strip() for item in raw.split(",") if item.strip()]
        for item in items:
            if item not in extra and not re.fullmatch(pattern, item):
                return self.bad(
                    name, f"must be comma-separated ids like {example}, got {item!r}", frozenset()
                )
        return frozenset(items)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = (self.text(name, default) or default).lower()
        if raw not in choices:
            return self.bad(name, f"must be {' or '.join(choices)}, got {raw!r}", default)
        return raw
