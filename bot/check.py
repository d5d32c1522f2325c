"""``python -m bot check``: is this deployment configured right? Prints a table, exits 0 or 1.

Checks, in order (a broken configuration stops the rest, since nothing else can be trusted):

1. the configuration: every variable, validated as at start (a row for each problem);
2. Slack: ``auth.test`` with the bot token;
3. the token's scopes (Slack's ``x-oauth-scopes`` response header) against ``manifest.yml``'s bot
   scopes: a missing scope is an error (reinstall the app), an extra one a note. Scopes that cannot be
   compared (no such header, a ``--manifest`` file that is missing or lists no scopes) are an error too:
   a check that cannot tell must not pass. Without ``--manifest`` the expected scopes are
   ``MANIFEST_BOT_SCOPES``, built in so that an installed package (which has no ``manifest.yml``)
   checks them too; ``tests/process/test_check.py`` keeps that list equal to the manifest's;
4. Socket Mode: ``apps.connections.open`` with the app-level token (when ``SLACK_APP_TOKEN`` is set);
5. the model: a one-token, non-streaming completion with ``OPENAI_MODEL`` (``max_tokens=1``, or
   ``max_completion_tokens=1`` for a model that refuses the older name);
6. Redis (when ``REDIS_URL`` is set): ``PING``, then what docs/redis.md requires, read from ``INFO``:
   6.2 or newer, ``appendonly yes``, no ``allkeys-*`` eviction, one primary (not a cluster);
7. access and limits: what is on (for information).

Nothing secret is printed: tokens and keys are named by their variable, never shown.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.bolt_app import slack_failure
from bot.constants import SLACK_API_URL
from bot.errors import (
    ConfigError,
    MalformedReply,
    ModelAuthError,
    ModelEndpointNotFound,
    ModelError,
    ModelNotFound,
    ModelOverloaded,
    ModelRateLimited,
    ModelServerError,
    ModelTimeout,
    ModelUnavailable,
    ModelUnreachable,
    QuotaExceeded,
)
from bot.settings import Settings, environment

# ``oauth_config.scopes.bot`` of the repository's manifest.yml, in its order (a test keeps them equal).
MANIFEST_BOT_SCOPES = (
    "app_mentions:read",
    "chat:write",
    "assistant:write",
    "commands",
    "im:history",
    "channels:history",
    "groups:history",
    "reactions:write",
    "reactions:read",
    "users:read",
    "files:read",
)
USAGE = "usage: python -m bot check [--manifest PATH]"
OPENAI_HOST = "api.openai.com"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped or for information only
    detail: str

    @property
    def status(self) -> str:
        return {True: "ok", False: "FIX", None: "-"}[self.ok]


def manifest_bot_scopes(text: str) -> list[str]:
    """The ``oauth_config.scopes.bot`` list of a Slack app manifest (YAML), read without a YAML
    library: block mappings by indentation and ``- item`` lists, comments and quotes stripped.
    A flow list (``bot: [a, b]``) is understood too."""
    path: list[tuple[int, str]] = []  # (indent, key) of the enclosing mappings
    scopes: list[str] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        content = line.strip()
        if content.startswith("- "):
            if [key for _, key in path] == ["oauth_config", "scopes", "bot"]:
                scopes.append(content[2:].strip().strip("'\""))
            continue
        while path and path[-1][0] >= indent:
            path.pop()
        key, _, value = content.partition(":")
        key = key.strip().strip("'\"")
        value = value.strip()
        if [k for _, k in path] == ["oauth_config", "scopes"] and key == "bot" and value.startswith("["):
            scopes.extend(item.strip().strip("'\"") for item in value.strip("[]").split(",") if item.strip())
            continue
        if not value:
            path.append((indent, key))
    return scopes


def _header(headers: Mapping[str, object], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value if isinstance(value, str) else ",".join(str(v) for v in value)  # type: ignore[attr-defined]
    return None


def _model_problem(err: ModelError, settings: Settings) -> str:
    where = settings.openai_base_url or "OpenAI"
    said = f" (the server said: {err.server_message})" if err.server_message else ""
    if isinstance(err, ModelAuthError):
        return f"{where} rejected the key: check OPENAI_API_KEY{said}"
    if isinstance(err, QuotaExceeded):
        return f"{where}: the account is out of quota, check its plan and billing{said}"
    if isinstance(err, ModelNotFound):
        return f"{where} does not serve model {settings.openai_model!r}: check OPENAI_MODEL{said}"
    if isinstance(err, ModelEndpointNotFound):
        return f"{where} has no chat completions API there: check OPENAI_BASE_URL{said}"
    if isinstance(err, ModelUnreachable):
        if settings.openai_base_url is None:
            return f"cannot reach OpenAI ({OPENAI_HOST}, {err}): a network problem (DNS, proxy, firewall)"
        return f"cannot reach {where} ({err}): check OPENAI_BASE_URL and that the server runs"
    if isinstance(err, ModelUnavailable):
        what = {
            ModelRateLimited: "is rate limiting",
            ModelOverloaded: "is overloaded",
            ModelServerError: "had a server error",
        }.get(type(err), "could not answer")
        return f"{where} {what} ({err}); try again"
    if isinstance(err, ModelTimeout):
        return f"{where} did not answer in time ({err})"
    if isinstance(err, MalformedReply):
        return f"{where} sent a reply that is not a chat completion ({err})"
    return f"{where} refused the request ({type(err).__name__}: {err})"


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _wanted_scopes(manifest: Path | None) -> tuple[list[str], str, str | None]:
    """(the bot scopes the token should have, where they come from, the problem reading them)."""
    if manifest is None:
        return list(MANIFEST_BOT_SCOPES), "manifest.yml", None
    text = _read(manifest)
    if text is None:
        problem = (
            f"{manifest} not found: cannot compare the token's scopes (pass an existing file to "
            "--manifest, or leave it out to compare with this version's manifest.yml)"
        )
        return [], manifest.name, problem
    wanted = manifest_bot_scopes(text)
    if not wanted:
        problem = f"{manifest} lists no oauth_config.scopes.bot: cannot compare the token's scopes"
        return [], manifest.name, problem
    return wanted, manifest.name, None


async def _check_slack(settings: Settings, manifest: Path | None) -> list[Check]:
    checks: list[Check] = []
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=15)
    try:
        response = await client.auth_test()
    except Exception as err:
        failure = slack_failure(err, url=settings.slack_api_url)
        if isinstance(failure, ConfigError):
            return [Check("slack auth", False, f"{failure.variable} {failure.problem}")]
        problem = (
            f"cannot reach Slack at {failure.url} ({failure.error}): a network problem (DNS, proxy, firewall)"
        )
        if settings.slack_api_url != SLACK_API_URL:
            problem += f" or nothing serves SLACK_API_URL ({settings.slack_api_url})"
        else:
            problem += " or Slack is down"
        return [Check("slack auth", False, problem)]
    team = response.get("team") or response.get("team_id")
    checks.append(Check("slack auth", True, f"@{response.get('user')} in {team} ({response.get('team_id')})"))

    granted_raw = _header(response.headers, "x-oauth-scopes")
    wanted, source, unreadable = _wanted_scopes(manifest)
    if unreadable is not None:
        checks.append(Check("slack scopes", False, unreadable))
    elif granted_raw is None:
        problem = (
            f"auth.test did not report the token's scopes (no x-oauth-scopes header), so they cannot be "
            f"compared with {source}: point SLACK_API_URL at Slack's Web API ({SLACK_API_URL}) or at a "
            "proxy that passes Slack's response headers through"
        )
        checks.append(Check("slack scopes", False, problem))
    else:
        granted = {s.strip() for s in granted_raw.split(",") if s.strip()}
        missing = [s for s in wanted if s not in granted]
        extra = sorted(granted - set(wanted))
        if missing:
            detail = (
                f"missing {', '.join(missing)}: add them in OAuth & Permissions (or recreate the app "
                f"from {source}) and reinstall it"
            )
            checks.append(Check("slack scopes", False, detail))
        else:
            note = f" (also granted: {', '.join(extra)})" if extra else ""
            checks.append(Check("slack scopes", True, f"all {len(wanted)} scopes of {source}{note}"))

    if settings.socket_mode:
        app_client = AsyncWebClient(
            token=settings.slack_app_token, base_url=settings.slack_api_url, timeout=15
        )
        try:
            await app_client.apps_connections_open(app_token=settings.slack_app_token or "")
            checks.append(Check("socket mode", True, "SLACK_APP_TOKEN opens a connection"))
        except SlackApiError as err:
            code = err.response.get("error") if isinstance(err.response.data, dict) else None
            checks.append(
                Check(
                    "socket mode",
                    False,
                    f"Slack refused SLACK_APP_TOKEN ({code or 'error'}): it needs connections:write, "
                    "and Socket Mode must be on",
                )
            )
        except Exception as err:
            problem = f"cannot reach Slack ({type(err).__name__}): a network problem"
            checks.append(Check("socket mode", False, problem))
    else:
        checks.append(Check("socket mode", None, "off: HTTP mode, events at POST /slack/events"))
    return checks


async def _check_model(settings: Settings) -> Check:
    from bot.model import build_model

    model = build_model(settings)
    try:
        served = await model.probe(timeout=min(30.0, settings.first_token_timeout_seconds))
    except ModelError as err:
        return Check("model", False, _model_problem(err, settings))
    finally:
        await model.close()
    where = settings.openai_base_url or "OpenAI"
    return Check("model", True, f"{served} answered at {where}")


async def _check_redis(settings: Settings) -> list[Check]:
    if not settings.redis_url:
        return [Check("redis", None, "not configured: queue and store in memory (one replica)")]
    from bot.redis import connect, ping, server_info, setup_problems

    client = connect(settings.redis_url, socket_timeout=3.0, connect_timeout=2.0, retries=0)
    try:
        alive = await asyncio.wait_for(ping(client), 10.0)
        if not alive:
            return [Check("redis", False, "cannot reach REDIS_URL: check the URL and that Redis runs")]
        try:
            info = await asyncio.wait_for(server_info(client), 10.0)
        except (RedisError, OSError, TimeoutError) as err:
            problem = f"cannot read INFO ({type(err).__name__}): check by hand what docs/redis.md requires"
            return [Check("redis", True, "answers PING"), Check("redis setup", False, problem)]
    except TimeoutError:
        return [Check("redis", False, "REDIS_URL did not answer PING within 10 s")]
    finally:
        await client.aclose()
    problems, notes = setup_problems(info)
    checks = [Check("redis", True, "answers PING")]
    if problems:
        checks.append(Check("redis setup", False, "; ".join(problems)))
    else:
        detail = (
            f"Redis {info.get('redis_version')}, appendonly yes, {info.get('maxmemory_policy')}, one primary"
        )
        checks.append(Check("redis setup", True, detail + "".join(f" (note: {n})" for n in notes)))
    return checks


def _limits(settings: Settings) -> Check:
    s = settings
    parts = [
        f"channels: {', '.join(sorted(s.allowed_channels)) if s.allowed_channels else 'all'}",
        f"users: {f'{len(s.allowed_users)} allowed' if s.allowed_users else 'all'}",
        f"rate: {s.user_rate.describe() + ' per user' if s.user_rate else 'off'}",
        f"daily tokens: workspace {f'{s.daily_tokens_workspace:,}' if s.daily_tokens_workspace else 'off'}, "
        f"user {f'{s.daily_tokens_user:,}' if s.daily_tokens_user else 'off'}",
    ]
    return Check("access & limits", None, "; ".join(parts))


async def run_checks(env: Mapping[str, str], *, manifest: Path | None = None) -> list[Check]:
    """The checks, in order; ``manifest`` overrides the built-in ``MANIFEST_BOT_SCOPES``."""
    try:
        settings = Settings.from_env(env)
    except ConfigError as err:
        return [Check("configuration", False, f"{each.variable} {each.problem}") for each in err.errors]
    mode = "Socket Mode" if settings.socket_mode else "HTTP mode"
    checks = [Check("configuration", True, f"{mode}, model {settings.openai_model}")]
    checks += await _check_slack(settings, manifest)
    checks.append(await _check_model(settings))
    checks += await _check_redis(settings)
    checks.append(_limits(settings))
    return checks


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'check'.ljust(width)}  status  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{c.name.ljust(width)}  {c.status.ljust(6)}  {c.detail}" for c in checks]
    failed = [c.name for c in checks if c.ok is False]
    lines.append("")
    names = ", ".join(dict.fromkeys(failed))  # each name once (several configuration rows)
    lines.append(f"{len(failed)} to fix: {names}" if failed else "all checks passed")
    return "\n".join(lines)


def main(argv: list[str], *, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the checks against ``env`` (the environment and ``.env`` by default); 0 if all passed."""
    out = out if out is not None else sys.stdout
    manifest: Path | None = None
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--manifest" and args:
            manifest = Path(args.pop(0))
        elif arg in ("-h", "--help"):
            print(USAGE, file=out)
            return 0
        else:
            print(f"threadline check: unknown argument {arg!r}\n{USAGE}", file=sys.stderr)
            return 2
    checks = asyncio.run(run_checks(environment() if env is None else env, manifest=manifest))
    print(render(checks), file=out)
    return 1 if any(c.ok is False for c in checks) else 0
