"""The Slack Web API boundary (``client.SlackGateway``) and its pacing (``pacing.Pacing``)."""

from bot.gateway.client import CANNOT_POST_ERRORS, METADATA_EVENT, SlackGateway, translate
from bot.gateway.pacing import GaveWay, Pacing

__all__ = ["CANNOT_POST_ERRORS", "METADATA_EVENT", "GaveWay", "Pacing", "SlackGateway", "translate"]
