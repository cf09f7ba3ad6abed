"""The ``keel.llm.chat`` activity: one model turn through the configured provider."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers.base import ChatProvider
from keel.models import ChatRequest, ChatResponse

T = TypeVar("T")
HEARTBEAT_INTERVAL_SECONDS = 2.0


async def heartbeating(work: Awaitable[T], interval: float = HEARTBEAT_INTERVAL_SECONDS) -> T:
    """Await ``work`` while heartbeating, so Temporal can deliver a cancellation to it.

    Without heartbeats an activity never learns that its workflow gave up on it (wall clock
    reached, run cancelled) and its HTTP request would run to the end; with them, the
    cancellation arrives as ``CancelledError`` here and aborts the request.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                return task.result()
            if activity.in_activity():
                activity.heartbeat()
    finally:
        if not task.done():
            task.cancel()


class LLMActivities:
    """Holds the provider (built once in worker.py) and resolves API keys at call time."""

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
        return await heartbeating(self._provider.chat(request, api_key))
