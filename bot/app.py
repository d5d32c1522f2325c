"""Assembles the service: settings → clients → stores → queue → engine → Bolt app → server.

``Runtime`` is what ``python -m bot`` runs, and what the end-to-end tests start in-process (real
Bolt, real slack_sdk and openai clients, real HTTP on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.engine import Engine
from bot.errors import ConfigError, SlackError
from bot.llm import LLMClient
from bot.queue.memory import MemoryQueue
from bot.ratelimit.memory import MemoryEditBudget
from bot.settings import Settings
from bot.slack import SlackGateway
from bot.store.memory import MemoryConversationStore, MemoryDeduplicator
from bot.worker import Worker
from handlers import register_all

logger = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = False
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Connect to Slack (auth.test), build the engine and the Bolt app. Raises ``ConfigError``
        when Slack refuses the bot token."""
        s = self.settings
        self.gateway = SlackGateway(
            token=s.slack_bot_token,
            base_url=s.slack_api_url,
            post_pacer=MemoryEditBudget(
                limit=s.posts_per_channel_burst,
                window=s.posts_per_channel_burst / s.posts_per_channel_per_second,
                reserve_fraction=0,
            ),
        )
        try:
            auth = await self.gateway.client.auth_test()
        except Exception as err:
            await self.gateway.close()
            if isinstance(err, SlackError) or hasattr(err, "response"):
                raise ConfigError(
                    "SLACK_BOT_TOKEN", "Slack rejected it (auth.test failed): check the token"
                ) from None
            raise ConfigError("SLACK_API_URL", f"cannot reach Slack at {s.slack_api_url}") from None
        bot_user_id = auth.get("user_id")
        self.llm = LLMClient(
            api_key=s.openai_api_key,
            base_url=s.openai_base_url,
            model=s.openai_model,
            first_token_timeout=s.first_token_timeout_seconds,
            idle_timeout=s.idle_timeout_seconds,
            max_tokens=s.max_answer_tokens,
        )
        if s.redis_url:
            logger.warning("REDIS_URL is set, but this version keeps its queue and store in memory")
        self.queue = MemoryQueue(channel_concurrency=s.channel_concurrency, lease_seconds=s.lease_seconds)
        self.engine = Engine(
            settings=s,
            gateway=self.gateway,
            llm=self.llm,
            queue=self.queue,
            store=MemoryConversationStore(ttl_seconds=s.conversation_ttl_seconds),
            dedup=MemoryDeduplicator(ttl_seconds=s.dedup_ttl_seconds),
            budget=MemoryEditBudget(limit=s.edits_per_minute, window=s.edit_window_seconds),
            bot_user_id=str(bot_user_id) if bot_user_id else None,
        )
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
            logger=logging.getLogger("threadline.bolt"),
        )
        register_all(self.bolt, self.engine)
        logger.info("connected to Slack as %s (team %s)", auth.get("user"), auth.get("team_id"))

    # -- HTTP --------------------------------------------------------------------------------
    def web_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/slack/events", self._slack_events)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def _slack_events(self, request: web.Request) -> web.Response:
        bolt_response = await self.bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": self.ready}, status=200 if self.ready else 503)

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
            self._socket = AsyncSocketModeHandler(self.bolt, self.settings.slack_app_token)
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
            logger.info("Socket Mode connected; health on port %s", self.port)
        else:
            logger.info("listening for Slack events on http://%s:%s/slack/events", host, self.port)
        self.ready = True
        return int(self.port or 0)

    async def stop(self, *, grace: float | None = None) -> None:
        """Graceful: stop taking requests, let answers in flight finish for ``grace`` seconds."""
        self.ready = False
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
        if hasattr(self, "worker"):
            await self.worker.stop(grace=grace)
            await self.engine.close()
            await self.queue.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if hasattr(self, "llm"):
            await self.llm.close()
        if hasattr(self, "gateway"):
            await self.gateway.close()


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
