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

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot import backends
from bot.constants import SLACK_MAX_BODY_BYTES
from bot.engine import Engine
from bot.errors import ConfigError, ModelError, SlackError
from bot.gateway import Pacing, SlackGateway
from bot.http_body import read_bounded, too_large
from bot.inbound import MalformedBody, parse_body, signature_ok
from bot.limits.base import LimitStore
from bot.limits.memory import MemoryLimitStore
from bot.metrics import Metrics
from bot.model import build_model
from bot.queue.memory import MemoryQueue
from bot.redis import ping as redis_ping
from bot.settings import Settings
from bot.texts import RESTARTING_TEXT
from bot.watchdog import SocketWatchdog, ping_interval_for
from bot.worker import Worker
from handlers import register_all

logger = logging.getLogger(__name__)


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
        self.model_problem: str | None = "not checked yet"  # None once the model server answered

    async def start(self) -> None:
        """Connect to Slack (auth.test), build the engine and the Bolt app. Raises ``ConfigError``
        when Slack refuses the bot token."""
        s = self.settings
        self.backends = backends.build(s)
        self.gateway = SlackGateway(
            token=s.slack_bot_token,
            base_url=s.slack_api_url,
            pacing=Pacing(self.backends.budgets, on_rate_limited=self.metrics.slack_ratelimited),
            post_attempts=s.max_attempts,
            retry_base_seconds=s.retry_base_seconds,
        )
        try:
            auth = await self.gateway.client.auth_test()
        except Exception as err:
            await self.gateway.close()
            await self.backends.close()
            if isinstance(err, SlackError) or hasattr(err, "response"):
                raise ConfigError(
                    "SLACK_BOT_TOKEN", "Slack rejected it (auth.test failed): check the token"
                ) from None
            raise ConfigError("SLACK_API_URL", f"cannot reach Slack at {s.slack_api_url}") from None
        bot_user_id = auth.get("user_id")
        self.model = build_model(s)
        self.model_problem = await self._check_model()
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
        self.bolt = AsyncApp(
            client=self.gateway.client,
            signing_secret=s.slack_signing_secret or "",
            request_verification_enabled=not s.socket_mode,
            # Listeners run before the ack, so an acked question is already queued (bot/intake.py);
            # they make no Slack call there, so the ack stays within Slack's 3 seconds.
            process_before_response=True,
            logger=logging.getLogger("threadline.bolt"),
        )
        register_all(self.bolt, self.engine)
        logger.info("connected to Slack as %s (team %s)", auth.get("user"), auth.get("team_id"))

    # -- HTTP --------------------------------------------------------------------------------
    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=SLACK_MAX_BODY_BYTES)
        if not self.settings.socket_mode:
            # Socket Mode turns Bolt's signature check off (envelopes come over the authenticated
            # socket), so the HTTP endpoint must not exist there: it would accept forged events.
            app.router.add_post("/slack/events", self._slack_events)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

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

    async def _check_model(self) -> str | None:
        """At start: does the model server answer? ``None`` if so, else what is wrong (for /readyz;
        the bot starts either way and tells users in plain words when the model fails)."""
        try:
            await self.model.ping(timeout=min(5.0, self.settings.first_token_timeout_seconds))
        except ModelError as err:
            problem = f"{type(err).__name__}: {err}"
            logger.warning("the model server did not answer at start (%s)", problem)
            return problem
        return None

    async def readiness(self) -> dict[str, str]:
        """What /readyz reports: "ok" for each check that passes, else what is wrong."""
        checks = {
            "serving": "ok" if self.ready else "not serving (starting or stopping)",
            "slack": "ok" if hasattr(self, "engine") else "auth.test not done",
            "model": self.model_problem or "ok",
        }
        if self._socket is not None:
            client = self._socket.client
            checks["socket_mode"] = "ok" if await client.is_connected() else "not connected"
        redis = getattr(getattr(self, "backends", None), "redis", None)
        if redis is not None:
            try:  # within Kubernetes' default probe timeout (1 s)
                alive = await asyncio.wait_for(redis_ping(redis), 0.5)
            except TimeoutError:
                alive = False
            checks["redis"] = "ok" if alive else "unreachable"
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

    async def serve(self, *, host: str = "0.0.0.0", port: int | None = None) -> int:
        """Serve HTTP (events in HTTP mode, health always); connect Socket Mode when configured.
        Returns the bound port."""
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, self.settings.port if port is None else port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        if self.settings.socket_mode:
            watchdog_after = self.settings.socket_watchdog_seconds
            self._socket = AsyncSocketModeHandler(
                self.bolt, self.settings.slack_app_token, ping_interval=ping_interval_for(watchdog_after)
            )
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
    await runtime.serve()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("shutting down: finishing answers in flight")
    await runtime.stop()
