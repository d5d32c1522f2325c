"""Assembles the service: settings → clients → stores → queue → engine → Bolt app → server.

``Runtime`` is what ``python -m bot`` runs, and what the end-to-end tests start in-process (real
Bolt, real slack_sdk and openai clients, real HTTP on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError

from bot import backends
from bot.bolt_app import bolt_app, slack_failure
from bot.constants import SLACK_MAX_BODY_BYTES
from bot.engine import Engine
from bot.errors import ModelError
from bot.gateway import Pacing, SlackGateway
from bot.http_body import read_bounded, too_large
from bot.inbound import MalformedBody, parse_body, signature_ok
from bot.limits.base import LimitStore
from bot.limits.memory import MemoryLimitStore
from bot.metrics import Metrics
from bot.model import build_model
from bot.queue.memory import MemoryQueue
from bot.readiness import Readiness
from bot.redis import ping as redis_ping
from bot.settings import Settings
from bot.texts import RESTARTING_TEXT
from bot.watchdog import SocketWatchdog, ping_interval_for
from bot.worker import Worker
from handlers import register_all

logger = logging.getLogger(__name__)


async def _listen(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port`` (0: a free port); returns the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    addresses = runner.addresses
    return runner, int(addresses[0][1]) if addresses else port


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = False
        self.refusing_intake = False
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._watchdog: SocketWatchdog | None = None
        self.port: int | None = None
        self.metrics = Metrics()  # one registry per runtime: in-process tests never share counters
        self.ops_port: int | None = None
        self._ops_runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Connect to Slack (auth.test), build the engine and the Bolt app, start the readiness
        checks. Raises ``ConfigError`` when Slack refuses the bot token, ``SlackUnreachable`` when
        Slack cannot be reached."""
        s = self.settings
        self.backends = backends.build(s)
        self.gateway = SlackGateway(
            token=s.slack_bot_token,
            base_url=s.slack_api_url,
            pacing=Pacing(self.backends.budgets, on_rate_limited=self.metrics.slack_ratelimited),
            post_attempts=s.max_attempts,
            retry_base_seconds=s.retry_base_seconds,
            thread_page_size=s.thread_read_page_size,
            thread_max_pages=s.thread_read_max_pages,
        )
        try:
            auth = await self.gateway.client.auth_test()
        except Exception as err:
            await self.gateway.close()
            await self.backends.close()
            raise slack_failure(err, url=s.slack_api_url) from None
        bot_user_id = auth.get("user_id")
        self.model = build_model(s)
        checks = {"slack": self._check_slack, "model": self._check_model}
        if self.backends.redis is not None:
            checks["redis"] = self._check_redis
        self.dependencies = Readiness(
            checks, interval=s.readiness_interval_seconds, timeout=s.readiness_timeout_seconds
        )
        self.dependencies.record("slack", None)  # auth.test has just answered
        await self.dependencies.refresh([name for name in checks if name != "slack"])
        self.limits: LimitStore
        if self.backends.redis is not None:
            from bot.limits.redis import RedisLimitStore

            self.limits = RedisLimitStore(self.backends.redis)
        else:
            self.limits = MemoryLimitStore()
        self.queue = self.backends.queue
        self.engine = Engine(
            settings=s,
            gateway=self.gateway,
            model=self.model,
            queue=self.queue,
            store=self.backends.store,
            dedup=self.backends.dedup,
            bot_user_id=str(bot_user_id) if bot_user_id else None,
            signals=self.backends.signals,
            metrics=self.metrics,
            limits=self.limits,
        )
        await self.backends.signals.start(on_stop=self.engine.stop_local)
        self.worker = Worker(
            queue=self.queue,
            handler=self.engine.run,
            concurrency=s.max_concurrency,
            lease_seconds=s.lease_seconds,
            on_finished=self.engine.job_finished,
        )
        self.worker.start()
        self.bolt = bolt_app(s, self.gateway.client, auth)
        register_all(self.bolt, self.engine)
        self.dependencies.start()
        logger.info("connected to Slack as %s (team %s)", auth.get("user"), auth.get("team_id"))

    # -- HTTP --------------------------------------------------------------------------------
    def web_app(self, *, with_ops: bool = True) -> web.Application:
        """The public app: /slack/events (HTTP mode) and /healthz, plus /readyz and /metrics unless
        they are served apart (``BOT_OPS_PORT``)."""
        app = web.Application(client_max_size=SLACK_MAX_BODY_BYTES)
        if not self.settings.socket_mode:
            # Socket Mode turns Bolt's signature check off (envelopes come over the authenticated
            # socket), so the HTTP endpoint must not exist there: it would accept forged events.
            app.router.add_post("/slack/events", self._slack_events)
        app.router.add_get("/healthz", self._healthz)
        if with_ops:
            self._add_ops_routes(app)
        return app

    def ops_app(self) -> web.Application:
        """What ``BOT_OPS_PORT`` serves: health, readiness and metrics, nothing from Slack."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        self._add_ops_routes(app)
        return app

    def _add_ops_routes(self, app: web.Application) -> None:
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)

    async def _slack_events(self, request: web.Request) -> web.Response:
        """Read within a bound, verify the signature on the raw bytes, check the body's shape, and
        only then hand the parsed body to Bolt (see ``bot.inbound``)."""
        raw = await read_bounded(request)
        if raw is None:
            return too_large()
        if not signature_ok(
            raw,
            timestamp=request.headers.get("X-Slack-Request-Timestamp"),
            signature=request.headers.get("X-Slack-Signature"),
            secret=self.settings.slack_signing_secret or "",
            now=time.time(),
        ):
            logger.debug("refused a request without a valid Slack signature (401)")
            return web.json_response({"ok": False, "error": "invalid_signature"}, status=401)
        try:
            body = parse_body(raw, request.headers.get("Content-Type"))
        except MalformedBody as err:
            return _malformed(str(err))
        del raw
        if self.refusing_intake:
            refused = _refuse_while_stopping(body)
            if refused is not None:
                return refused
        try:
            # Bolt gets the body we parsed and verified: in HTTP mode it would parse the text again
            # by its own rules (which drop a form body that merely mentions "payload"). A parsed body
            # is what Bolt takes in Socket Mode, where it skips its signature check, as it may here.
            bolt_request = AsyncBoltRequest(
                body=body,
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
                mode="socket_mode",
            )
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as err:
            return _malformed(f"Bolt could not read it ({type(err).__name__})")  # a shape we missed
        bolt_response = await self.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def _healthz(self, request: web.Request) -> web.Response:
        """Liveness: 200 while the process serves HTTP (readiness is ``/readyz``)."""
        return web.json_response({"ok": True, "ready": self.ready})

    # -- readiness: each dependency re-checked every BOT_READINESS_INTERVAL_SECONDS (bot/readiness.py)
    async def _ping_model(self, timeout: float) -> None:
        """One cheap request to the model server; raises a ``ModelError`` when it fails."""
        await self.model.ping(timeout=timeout)

    async def _check_model(self) -> str | None:
        """Does the model server answer? ``None`` if so, else what is wrong (for /readyz; the bot
        serves either way and tells users in plain words when the model fails)."""
        try:
            await self._ping_model(self.settings.readiness_timeout_seconds)
        except ModelError as err:
            return f"{type(err).__name__}: {err}"
        return None

    async def _check_slack(self) -> str | None:
        try:
            await self.gateway.client.auth_test()
        except SlackApiError as err:
            code = err.response.get("error") if isinstance(err.response.data, dict) else None
            return f"auth.test failed ({code or f'HTTP {err.response.status_code}'})"
        except (aiohttp.ClientError, OSError) as err:
            return f"unreachable ({type(err).__name__})"
        return None

    async def _check_redis(self) -> str | None:
        redis = self.backends.redis
        return None if redis is None or await redis_ping(redis) else "unreachable"

    async def readiness(self) -> dict[str, str]:
        """What /readyz reports: "ok" for each check that passes, else what is wrong. Answered from
        the last round of checks: a probe never waits on Slack, the model server or Redis."""
        checks = {"serving": "ok" if self.ready else "not serving (starting or stopping)"}
        dependencies = getattr(self, "dependencies", None)
        if dependencies is None:
            checks["slack"] = "auth.test not done"
        else:
            checks.update(dependencies.results)
        if self._socket is not None:
            client = self._socket.client
            checks["socket_mode"] = "ok" if await client.is_connected() else "not connected"
        return checks

    async def _readyz(self, request: web.Request) -> web.Response:
        checks = await self.readiness()
        ok = all(value == "ok" for value in checks.values())
        return web.json_response({"ok": ok, "checks": checks}, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.render()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def serve(self, *, host: str | None = None, port: int | None = None) -> int:
        """Serve HTTP (events in HTTP mode, health always; readiness and metrics here or on
        ``BOT_OPS_PORT``); connect Socket Mode when configured. Returns the bound port."""
        host = self.settings.host if host is None else host
        separate = self.settings.ops_port is not None
        self._runner, self.port = await _listen(
            self.web_app(with_ops=not separate), host, self.settings.port if port is None else port
        )
        if self.settings.ops_port is not None:
            self._ops_runner, self.ops_port = await _listen(self.ops_app(), host, self.settings.ops_port)
            logger.info("health, readiness and metrics on http://%s:%s", host, self.ops_port)
        if self.settings.socket_mode:
            watchdog_after = self.settings.socket_watchdog_seconds
            self._socket = AsyncSocketModeHandler(
                self.bolt, self.settings.slack_app_token, ping_interval=ping_interval_for(watchdog_after)
            )
            try:
                # The first URL is asked for here, once: slack_sdk's connect loop would retry a
                # rejected app-level token forever, logging a traceback each time.
                self._socket.client.wss_uri = await self._socket.client.issue_new_wss_url()
            except Exception as err:
                raise slack_failure(
                    err,
                    url=self.settings.slack_api_url,
                    method="apps.connections.open",
                    variable="SLACK_APP_TOKEN",
                ) from None
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
            self._watchdog = SocketWatchdog(
                self._socket.client, silent_after=watchdog_after, on_reconnect=self.metrics.socket_reconnect
            )
            self._watchdog.start()
            logger.info("Socket Mode connected; health on port %s", self.port)
        else:
            logger.info("listening for Slack events on http://%s:%s/slack/events", host, self.port)
        self.ready = True
        return int(self.port or 0)

    async def stop(self, *, grace: float | None = None) -> None:
        """Graceful: stop taking requests, let answers in flight finish for ``grace`` seconds."""
        self.ready = False
        self.refusing_intake = isinstance(getattr(self, "queue", None), MemoryQueue)
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        if hasattr(self, "dependencies"):
            await self.dependencies.close()
        if self._watchdog is not None:
            await self._watchdog.close()
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
        if hasattr(self, "worker"):
            await self.worker.stop(grace=grace)
            if isinstance(self.queue, MemoryQueue):
                # Questions being accepted right now are queued (or refused) first, then told.
                await self.engine.intake_settled(timeout=5.0)
                await self._abandon_queued(self.queue)
            await self.engine.close()
        if hasattr(self, "backends"):
            await self.backends.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._ops_runner is not None:
            await self._ops_runner.cleanup()
        if hasattr(self, "model"):
            await self.model.close()
        if hasattr(self, "gateway"):
            await self.gateway.close()

    async def _abandon_queued(self, queue: MemoryQueue) -> None:
        """What an in-memory queue still holds dies with the process: tell each asker (bounded)."""
        jobs = await queue.drain()
        if not jobs:
            return
        logger.warning("shutting down with %d unanswered questions (in-memory queue)", len(jobs))
        try:
            async with asyncio.timeout(10):
                for job in jobs:
                    await self.engine.abandon(job)
        except TimeoutError:
            logger.warning("could not tell every asker before exiting")


def _malformed(reason: str) -> web.Response:
    """400 for a correctly signed body Slack would never send: one line, never the body."""
    logger.warning("refused a signed request with a malformed body: %s", reason)
    return web.json_response({"ok": False, "error": "malformed_body"}, status=400)


def _refuse_while_stopping(body: Mapping[str, Any]) -> web.Response | None:
    """Shutting down with an in-memory queue: a question taken now could never be answered. ``None``
    lets the request through (button presses still reach answers in flight)."""
    if "command" in body:
        # Slack does not retry a slash command: tell the asker.
        return web.json_response({"response_type": "ephemeral", "text": RESTARTING_TEXT})
    if body.get("type") == "event_callback":
        # Slack retries an event that got no 2xx, so it is not lost.
        return web.json_response({"ok": False, "error": "shutting_down"}, status=503)
    return None


async def run_forever(settings: Settings) -> None:
    import signal

    runtime = Runtime(settings)
    await runtime.start()
    try:
        await runtime.serve()
    except BaseException:
        await runtime.stop(grace=0)
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("shutting down: finishing answers in flight")
    await runtime.stop()
