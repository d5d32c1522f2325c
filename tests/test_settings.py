from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import Settings, read_dotenv

BASE = {
    "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
    "SLACK_SIGNING_SECRET": "secret",
    "OPENAI_API_KEY": "sk-test",
}


def test_minimal_http_mode() -> None:
    s = Settings.from_env(BASE)
    assert not s.socket_mode
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.timeout_seconds == 120
    assert s.edit_interval_seconds == 1.0
    assert s.edits_per_minute == 45
    assert s.max_queued_total == 1000


def test_native_streams_by_default() -> None:
    s = Settings.from_env(BASE)
    assert s.transport == "auto"
    assert (s.stream_starts_per_minute, s.stream_stops_per_minute, s.stream_appends_per_minute) == (
        18,
        18,
        90,
    )
    assert (s.stream_rollover_chars, s.stream_rollover_seconds) == (11_000, 240.0)
    assert Settings.from_env({**BASE, "BOT_TRANSPORT": "Edit"}).transport == "edit"


def test_socket_mode_needs_no_signing_secret() -> None:
    env = {**BASE, "SLACK_APP_TOKEN": "xapp-1-A-1-x"}
    del env["SLACK_SIGNING_SECRET"]
    assert Settings.from_env(env).socket_mode


def test_tokens_are_not_in_repr() -> None:
    assert "xoxb" not in repr(Settings.from_env(BASE))
    assert "sk-test" not in repr(Settings.from_env(BASE))


@pytest.mark.parametrize(
    ("change", "variable", "words"),
    [
        ({"SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN", "missing"),
        ({"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN", "xoxb-"),
        ({"SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"),
        ({"SLACK_APP_TOKEN": "xoxb-wrong"}, "SLACK_APP_TOKEN", "xapp-"),
        ({"OPENAI_API_KEY": ""}, "OPENAI_API_KEY", "missing"),
        ({"OPENAI_BASE_URL": "localhost:11434"}, "OPENAI_BASE_URL", "http://"),
        ({"SLACK_API_URL": "ftp://x"}, "SLACK_API_URL", "http://"),
        ({"BOT_TIMEOUT_SECONDS": "soon"}, "BOT_TIMEOUT_SECONDS", "number"),
        ({"BOT_TIMEOUT_SECONDS": "0"}, "BOT_TIMEOUT_SECONDS", "greater than 0"),
        ({"BOT_EDITS_PER_MINUTE": "1.5"}, "BOT_EDITS_PER_MINUTE", "whole number"),
        ({"BOT_MAX_CONCURRENCY": "0"}, "BOT_MAX_CONCURRENCY", "at least 1"),
        ({"BOT_MAX_QUEUED_TOTAL": "0"}, "BOT_MAX_QUEUED_TOTAL", "at least 1"),
        ({"BOT_MAX_QUEUED_TOTAL": "1e3"}, "BOT_MAX_QUEUED_TOTAL", "whole number"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL", "redis://"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL", "DEBUG"),
        ({"BOT_TRANSPORT": "carrier-pigeon"}, "BOT_TRANSPORT", "auto or native or edit"),
        ({"BOT_STREAM_ROLLOVER_CHARS": "12000"}, "BOT_STREAM_ROLLOVER_CHARS", "at most 11500"),
        ({"BOT_STREAM_ROLLOVER_CHARS": "100"}, "BOT_STREAM_ROLLOVER_CHARS", "at least 500"),
        ({"BOT_STREAM_STARTS_PER_MINUTE": "0"}, "BOT_STREAM_STARTS_PER_MINUTE", "at least 1"),
        ({"BOT_STREAM_ROLLOVER_SECONDS": "0"}, "BOT_STREAM_ROLLOVER_SECONDS", "greater than 0"),
    ],
)
def test_bad_values_name_the_variable(change: dict[str, str], variable: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, **change})
    assert info.value.variable == variable
    assert words in info.value.problem


def test_local_model_server_needs_no_key() -> None:
    env = {**BASE, "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}
    del env["OPENAI_API_KEY"]
    s = Settings.from_env(env)
    assert s.openai_base_url == "http://127.0.0.1:11434/v1"
    assert s.openai_api_key


def test_slack_api_url_gets_trailing_slash() -> None:
    assert Settings.from_env({**BASE, "SLACK_API_URL": "http://127.0.0.1:9/api"}).slack_api_url.endswith(
        "/api/"
    )


def test_dotenv(tmp_path: Path) -> None:
    f = tmp_path / ".env"
    f.write_text("# comment\nexport A=1\nB='two words'\nC=\"x\"\nD=plain # trailing\n\nnot a line\n")
    assert read_dotenv(f) == {"A": "1", "B": "two words", "C": "x", "D": "plain"}
    assert read_dotenv(tmp_path / "missing") == {}


ROOT = Path(__file__).resolve().parent.parent


def settings_variables() -> set[str]:
    """The variables ``Settings.from_env`` reads: the first argument of every ``r.<kind>("NAME", …)``."""
    import re

    source = (ROOT / "bot" / "settings.py").read_text()
    read = set(re.findall(r'\br\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', source))
    named = set(re.findall(r'"((?:SLACK|OPENAI|BOT|REDIS|PORT|LOG)[A-Z_]*)"', source))
    assert named <= read, named - read  # a variable named in an error is one that is read
    assert len(read) > 40
    return read


def test_env_example_lists_every_variable() -> None:
    import re

    listed = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    used = settings_variables()
    assert used == listed, {"missing": used - listed, "not read": listed - used}


def test_readme_table_lists_every_variable() -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}
    used = settings_variables()
    assert used == documented, {"missing": used - documented, "not read": documented - used}
