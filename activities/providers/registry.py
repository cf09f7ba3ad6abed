"""Which provider serves a request: the wire its model settings name (``model.provider``).

Built once in worker.py over the shared HTTP client; ``LLMActivities`` sees one
``ChatProvider``, so a fallback or a tier on another wire than the primary model is served
by its own provider within the same run.
"""

from __future__ import annotations

import httpx2

from activities.providers.anthropic import AnthropicProvider
from activities.providers.base import ChatProvider
from activities.providers.openai_compat import OpenAICompatProvider
from keel.contracts import ChatRequest, ChatResponse
from keel.contracts.model_settings import ProviderName


class ProviderRegistry:
    """A ``ChatProvider`` that hands each request to the provider of its model's wire."""

    def __init__(self, providers: dict[ProviderName, ChatProvider]) -> None:
        self._providers = providers

    @classmethod
    def over(cls, http: httpx2.AsyncClient) -> ProviderRegistry:
        """Every provider Keel has, sharing ``http``."""
        return cls({"openai": OpenAICompatProvider(http), "anthropic": AnthropicProvider(http)})

    async def chat(self, request: ChatRequest, api_key: str | None) -> ChatResponse:
        # ProviderName is a closed Literal validated with the profile: a KeyError here would be
        # a registry built without one of them, a programming error.
        return await self._providers[request.model.provider].chat(request, api_key)
