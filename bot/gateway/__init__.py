"""The Slack Web API boundary (``client.SlackGateway``), its pacing (``pacing.Pacing``) and how Slack's
errors are read (``errors``)."""

from bot.gateway.client import SlackGateway
from bot.gateway.errors import CANNOT_POST_ERRORS, METADATA_EVENT, translate
from bot.gateway.pacing import GaveWay, Pacing

__all__ = ["CANNOT_POST_ERRORS", "METADATA_EVENT", "GaveWay", "Pacing", "SlackGateway", "translate"]
