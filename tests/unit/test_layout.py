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


def test_modules_and_classes_fit_in_a_head() -> None:
    """Issue 12: no module in bot/ or handlers/ over 400 lines, no class over 300."""
    too_long: list[str] = []
    for path in sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "handlers").rglob("*.py")]):
        source = path.read_text()
        name = str(path.relative_to(ROOT))
        if len(source.splitlines()) > 400:
            too_long.append(f"{name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > 300:
                    too_long.append(f"{name}: class {node.name} {lines} lines")
    assert too_long == []


def test_handlers_import_no_engine_internals_openai_or_redis() -> None:
    allowed_bot = {"bot.payloads", "bot.jobs", "bot.texts", "bot.blocks", "bot.constants"}
    offenders = {}
    for path in sorted((ROOT / "handlers").rglob("*.py")):
        mods = imported_modules(path)
        bad = sorted(
            m
            for m in mods
            if m.split(".")[0] in ("openai", "redis") or (m.startswith("bot") and m not in allowed_bot)
        )
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}
