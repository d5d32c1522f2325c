"""The Bolt app, authorized by our own start-up ``auth.test``, and what a failed ``auth.test`` means.

``Runtime.start`` calls ``auth.test`` once; ``bolt_app`` hands its result to Bolt as a static
authorization, so Bolt never calls ``auth.test`` itself (its default single-team authorization does
so on the first request, and that request's ack waits for Slack: 4 s when Slack is slow).
"""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped, warning_token_skipped
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.errors import ConfigError, SlackUnreachable
from bot.settings import Settings

_REJECTED_HINTS = {
    "SLACK_BOT_TOKEN": "copy the xoxb-… token again from your Slack app's OAuth & Permissions page "
    "(reinstall the app if it was revoked)",
    "SLACK_APP_TOKEN": "copy the xapp-… app-level token again from your Slack app's Basic Information "
    "page (App-Level Tokens; it needs the connections:write scope)",
}


def slack_failure(
    err: Exception, *, url: str, method: str = "auth.test", variable: str = "SLACK_BOT_TOKEN"
) -> ConfigError | SlackUnreachable:
    """What a failed start-up call means: Slack refused the token in ``variable`` (a configuration
    error) or could not be reached / answered only server errors (a network or Slack problem).
    ``method``: ``auth.test`` (the bot token) or ``apps.connections.open`` (the app-level token)."""
    if isinstance(err, SlackApiError):
        status = err.response.status_code
        if status < 500 and status != 429:
            code = err.response.get("error") if isinstance(err.response.data, dict) else None
            return ConfigError(
                variable, f"Slack rejected it ({code or f'HTTP {status}'}): {_REJECTED_HINTS[variable]}"
            )
        return SlackUnreachable(method, f"HTTP {status}", url)
    return SlackUnreachable(method, type(err).__name__, url)


class _BoltTokenNotice(logging.Filter):
    """Bolt falls back to ``SLACK_BOT_TOKEN`` from the environment for its ``token`` argument, and
    warns while it is built that the token is unused beside ``client`` and ``authorize``. We give it
    no token on purpose (the client carries it; ``authorize`` hands over our start-up auth.test), so
    these two lines would only be noise on every start: drop exactly them, while the app is built."""

    NOTICES = frozenset({warning_client_prioritized_and_token_skipped(), warning_token_skipped()})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.NOTICES


def bolt_app(settings: Settings, client: AsyncWebClient, auth: AsyncSlackResponse) -> AsyncApp:
    """The Bolt app. Its authorization is the result of our own start-up ``auth.test``: Bolt's
    default (single-team) authorization calls ``auth.test`` again on the first request and holds
    that request's ack until Slack answers; with a static result no ack ever waits on Slack."""
    authorized = AuthorizeResult.from_auth_test_response(
        auth_test_response=auth,
        bot_token=settings.slack_bot_token,
        bot_scopes=auth.headers.get("x-oauth-scopes"),
    )

    async def authorize() -> AuthorizeResult:
        return authorized

    bolt_logger = logging.getLogger("threadline.bolt")
    notice = _BoltTokenNotice()
    bolt_logger.addFilter(notice)
    try:
        return AsyncApp(
            # Named, or Bolt names the app after its caller's file through inspect.stack(), which reads
            # the source of every frame on the stack: a tenth of a second of CPU at each start.
            name="threadline",
            client=client,
            authorize=authorize,
            signing_secret=settings.slack_signing_secret or "",
            request_verification_enabled=not settings.socket_mode,
            # Listeners run before the ack, so an acked question is already queued (bot/intake.py);
            # they make no Slack call there, so the ack stays within Slack's 3 seconds.
            process_before_response=True,
            logger=bolt_logger,
        )
    finally:
        bolt_logger.removeFilter(notice)
