"""The model seam: ``ModelClient`` (``base``), its OpenAI-compatible implementation (``openai``: the
client, ``stream``: one streamed attempt, ``errors``: what went wrong, ``retry``: when to try again),
and ``build_model``, the one place that builds a client from the settings (the app and ``bot check``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.model.base import Delta, Finished, ModelClient, ModelEvent, Retrying

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = ["Delta", "Finished", "ModelClient", "ModelEvent", "Retrying", "build_model"]


def build_model(settings: Settings) -> ModelClient:
    """The model client the settings ask for (today: any OpenAI-compatible server)."""
    from bot.model.openai import OpenAIModel  # the openai package loads only when a client is built

    return OpenAIModel.from_settings(settings)
