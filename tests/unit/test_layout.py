"""The layout's rules that a reader relies on: ``bot/`` never imports the sandbox (the sandbox registers
itself as a command of ``python -m bot`` through the ``threadline.commands`` entry point group)."""

from __future__ import annotations

import ast
from pathlib import Path

from bot.__main__ import COMMANDS_GROUP, _commands, usage

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_bot_never_imports_the_sandbox() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "sandbox")
        for path in sorted((ROOT / "bot").rglob("*.py"))
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_the_sandbox_is_a_registered_command() -> None:
    commands = _commands()
    assert commands["sandbox"].value == "sandbox.__main__:main", COMMANDS_GROUP
    assert "sandbox [--port PORT] [--open]" in usage()
