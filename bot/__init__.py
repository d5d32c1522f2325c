"""Threadline: a Slack bot that answers mentions, DMs and ``/ask`` by streaming an LLM's answer.

The package is a small library; ``python -m bot`` runs it. See ARCHITECTURE.md for the path of a request.
"""

__version__ = "0.1.0"
