"""The README's model-server guidance (issue 15 items 6 and 9) stays complete as servers are added."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n#", start + len(title))
    return README[start : end if end != -1 else None]


def first_column(table: str) -> list[str]:
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    return [row.split("|")[1].strip() for row in rows[1:]]  # the header row is not a server


def test_every_server_in_the_table_has_its_error_behaviour_written() -> None:
    servers = first_column(section("### OpenAI-compatible servers").split("####")[0])
    on_errors = section("#### What each server does on errors")
    described = " ".join(first_column(on_errors))
    for server in servers:
        name = re.sub(r"`|proxy", "", server).split()[0]
        assert name in described, f"{server}: what it does on errors is not in the README"


def test_proxies_retrying_and_small_models_are_explained() -> None:
    on_errors = section("#### What each server does on errors")
    assert "BOT_MAX_ATTEMPTS=1" in on_errors and "llm_provider-retry-after" in on_errors
    small = section("#### Small local models")
    assert "BOT_CONTEXT_TOKENS" in small and "empty" in small and "BOT_MAX_ANSWER_TOKENS" in small
