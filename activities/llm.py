"""The ``keel.llm.chat`` activity: one model turn through the configured provider."""

from __future__ import annotations

import os

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers.base import ChatProvider
from keel.models import ChatRequest, ChatResponse


class LLMActivities:
    """Holds the providers (built once in worker.py) and resolves API keys at call time."""

    def __init__(self, provider: ChatProvider) -> None:
        self._provider = provider

    @activity.defn(name="keel.llm.chat")
    async def chat(self, request: ChatRequest) -> ChatResponse:
        api_key: str | None = None
        if request.model.api_key_env:
            api_key = os.environ.get(request.model.api_key_env)
            if not api_key:
                raise ApplicationError(
                    f"environment variable {request.model.api_key_env} (the API key for model"
                    f" {request.model.name!r}) is not set on this worker",
                    type="ConfigError",
                    non_retryable=True,
                )
        return await self._provider.chat(request, api_key)
