from pathlib import Path

import pytest

from bot.errors import ConfigError, ConfigErrors
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


def test_thread_follow_ups_are_on_by_default() -> None:
    assert Settings.from_env(BASE).thread_followups
    assert not Settings.from_env({**BASE, "BOT_THREAD_FOLLOWUPS": "false"}).thread_followups
    assert Settings.from_env({**BASE, "BOT_THREAD_FOLLOWUPS": "True"}).thread_followups


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
        ({"SLACK_SIGNING_SECRET": ""}, "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"),
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
        ({"BOT_THREAD_FOLLOWUPS": "sometimes"}, "BOT_THREAD_FOLLOWUPS", "true or false"),
    ],
)
def test_bad_values_name_the_variable(change: dict[str, str], variable: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, **change})
    assert info.value.variable == variable
    assert words in info.value.problem


SOCKET = {"SLACK_APP_TOKEN": "xapp-1-A1-1-x", "OPENAI_API_KEY": "sk-test"}


def problems(env: dict[str, str]) -> dict[str, str]:
    """Every variable ``from_env`` refuses in ``env``, with its problem."""
    with pytest.raises(ConfigErrors) as info:
        Settings.from_env(env)
    found = {e.variable: e.problem for e in info.value.errors}
    assert len(found) == len(info.value.errors), "a variable is named once"
    return found


def test_every_bad_variable_is_named_in_one_reading() -> None:
    env = {
        **SOCKET,
        "PORT": "99999",
        "BOT_EDITS_PER_MINUTE": "60",
        "BOT_TIMEOUT_SECONDS": "soon",
        "BOT_LEASE_SECONDS": "-5",
        "BOT_USER_RATE": "lots",
        "LOG_LEVEL": "LOUD",
    }
    del env["OPENAI_API_KEY"]
    found = problems(env)
    assert set(found) == {
        "SLACK_BOT_TOKEN",
        "OPENAI_API_KEY",
        "PORT",
        "BOT_EDITS_PER_MINUTE",
        "BOT_TIMEOUT_SECONDS",
        "BOT_LEASE_SECONDS",
        "BOT_USER_RATE",
        "LOG_LEVEL",
    }
    # Still a ConfigError: code that knows one problem gets the first; str() lists them all.
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.variable == "SLACK_BOT_TOKEN"
    assert len(str(info.value).splitlines()) == 8


def test_socket_mode_names_its_own_tokens_not_the_signing_secret() -> None:
    # SLACK_APP_TOKEN set (Socket Mode, the manifest's default), the bot token missing.
    found = problems(dict(SOCKET))
    assert set(found) == {"SLACK_BOT_TOKEN"}
    assert "Socket Mode" in found["SLACK_BOT_TOKEN"] and "OAuth & Permissions" in found["SLACK_BOT_TOKEN"]
    # Nothing set for Slack at all: Socket Mode's tokens are asked for; HTTP mode is the alternative.
    found = problems({"OPENAI_API_KEY": "sk-test"})
    assert set(found) == {"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN"}
    assert found["SLACK_APP_TOKEN"].startswith("is missing: Socket Mode")
    assert "SLACK_SIGNING_SECRET" not in found
    # A malformed app token is still Socket Mode: no signing secret is asked for.
    found = problems({"SLACK_APP_TOKEN": "xoxb-wrong", "SLACK_BOT_TOKEN": "xoxb-1", "OPENAI_API_KEY": "k"})
    assert set(found) == {"SLACK_APP_TOKEN"}


@pytest.mark.parametrize(
    ("change", "variable", "words"),
    [
        ({"PORT": "99999"}, "PORT", "0 to 65535"),
        ({"PORT": "-1"}, "PORT", "0 to 65535"),
        ({"BOT_OPS_PORT": "70000"}, "BOT_OPS_PORT", "0 to 65535"),
        ({"PORT": "8080", "BOT_OPS_PORT": "8080"}, "BOT_OPS_PORT", "differ from PORT"),
        ({"BOT_EDITS_PER_MINUTE": "51"}, "BOT_EDITS_PER_MINUTE", "Slack's limit of about 50"),
        ({"BOT_EDIT_WINDOW_SECONDS": "30"}, "BOT_EDITS_PER_MINUTE", "per 30 s"),  # 45 in 30 s: 90 a minute
        ({"BOT_POSTS_PER_CHANNEL_PER_SECOND": "5"}, "BOT_POSTS_PER_CHANNEL_PER_SECOND", "at most 1"),
        ({"BOT_TIMEOUT_SECONDS": "inf"}, "BOT_TIMEOUT_SECONDS", "finite"),
        ({"BOT_IDLE_TIMEOUT_SECONDS": "nan"}, "BOT_IDLE_TIMEOUT_SECONDS", "finite"),
        ({"BOT_LEASE_SECONDS": "-5"}, "BOT_LEASE_SECONDS", "greater than 0"),
        ({"BOT_READINESS_INTERVAL_SECONDS": "0"}, "BOT_READINESS_INTERVAL_SECONDS", "greater than 0"),
        ({"BOT_READINESS_TIMEOUT_SECONDS": "-1"}, "BOT_READINESS_TIMEOUT_SECONDS", "greater than 0"),
        ({"HOST": "http://0.0.0.0"}, "HOST", "address to listen on"),
    ],
)
def test_out_of_range_values_are_refused(change: dict[str, str], variable: str, words: str) -> None:
    found = problems({**BASE, **change})
    assert set(found) == {variable}, found
    assert words in found[variable]


def test_slacks_own_limits_bind_only_slack() -> None:
    # A fake workspace or a test server may allow more than Slack (the benchmark lifts the limit).
    fake = Settings.from_env(
        {**BASE, "SLACK_API_URL": "http://127.0.0.1:9/api/", "BOT_EDITS_PER_MINUTE": "1000000"}
    )
    assert fake.edits_per_minute == 1_000_000
    assert Settings.from_env({**BASE, "BOT_EDITS_PER_MINUTE": "50"}).edits_per_minute == 50


def test_host_ops_port_and_readiness() -> None:
    s = Settings.from_env(BASE)
    assert (s.host, s.port, s.ops_port) == ("0.0.0.0", 3000, None)
    assert (s.readiness_interval_seconds, s.readiness_timeout_seconds) == (10.0, 5.0)
    s = Settings.from_env({**BASE, "HOST": "127.0.0.1", "PORT": "0", "BOT_OPS_PORT": "9090"})
    assert (s.host, s.port, s.ops_port) == ("127.0.0.1", 0, 9090)
    assert Settings.from_env({**BASE, "HOST": "::"}).host == "::"


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


ROOT = Path(__file__).resolve().parents[2]


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
