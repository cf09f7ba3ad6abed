"""The ``keel.llm.chat`` activity: one model turn through the configured provider.

Every provider call goes through the worker's circuit for ``request.model.base_url`` (see
activities/breaker.py), so an unreachable provider makes runs wait out a cool-down instead of
each burning its attempts on connect timeouts.

With a content store, the request carries the conversation by reference: the activity
assembles the provider's messages from the stored transcript (activities/transcripts.py),
stores what is new before the call and the answer after it, and says where
(``ChatResponse.transcript``, ``ChatResponse.content_ref``).
"""

from __future__ import annotations

import os
import time
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.breaker import BreakerConfig, BreakerRegistry, Clock
from activities.heartbeat import heartbeating
from activities.observe import ModelCallObserver
from activities.payloads import too_large
from activities.providers.base import ChatProvider
from activities.spend import SpendGuard
from activities.transcripts import assemble, store_answer
from keel.contracts import ChatRequest, ChatResponse, names
from keel.runtime.store.content import ContentStore
from keel.runtime.telemetry import Telemetry

T = TypeVar("T")


def provider_failed(exc: BaseException) -> bool:
    """Whether an exception from a provider call counts against the provider's circuit.

    The rule is the providers' own retryability classification (activities/providers/base.py):
    a retryable ``ApplicationError`` (transport error, timeout, 408/409/429/5xx, non-JSON body)
    is a failure. A non-retryable one (400/401/403/404/422, an unexpected response shape) is
    counted as a *success*, not as neutral: the provider received the request and answered it,
    which is exactly the evidence a half-open probe looks for, and a run with a bad request
    must neither open the circuit for everyone nor keep it open. Any other exception is
    unexpected and retryable for Temporal, so it counts as a failure too.
    """
    if isinstance(exc, ApplicationError):
        return not exc.non_retryable
    return True


def llm_breakers(
    config: BreakerConfig | None = None, *, clock: Clock = time.monotonic
) -> BreakerRegistry:
    """The registry of provider circuits (one per base URL), classified by ``provider_failed``."""
    return BreakerRegistry("llm", "LLM provider", config, is_failure=provider_failed, clock=clock)


class LLMActivities:
    """Holds the provider and the provider circuits (built once in worker.py).

    API keys are resolved at call time. ``breakers`` defaults to a private registry with the
    default settings, so a bare ``LLMActivities(provider)`` (tests, scripts) is still protected.
    ``telemetry`` receives each attempt's span and metrics (activities/observe.py); without it
    only the ``model.call`` log event is written. ``store`` (worker.py:
    ``open_content_store``) keeps the conversation; without it every request must carry the
    whole conversation inline and responses name no stored transcript.
    """

    def __init__(
        self,
        provider: ChatProvider,
        breakers: BreakerRegistry | None = None,
        *,
        telemetry: Telemetry | None = None,
        store: ContentStore | None = None,
        spend: SpendGuard | None = None,
    ) -> None:
        self._provider = provider
        self._spend = spend  # the spend ledger (activities/spend.py); None: not kept
        self._store = store
        self._breakers = breakers if breakers is not None else llm_breakers()
        self._observer = ModelCallObserver(telemetry)

    @activity.defn(name=names.ACTIVITY_LLM_CHAT)
    async def chat(self, request: ChatRequest) -> ChatResponse:
        """One attempt: one ``model.call`` event, one ``chat {model}`` span, its metrics."""
        with self._observer.observe(request) as call:
            response = await self._chat(request)
            call.done(response)
        return response

    async def _chat(self, request: ChatRequest) -> ChatResponse:
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
        if self._spend is not None:
            await self._spend.check(request)
        # Stored before the call (a retry stores nothing new), read back whole for the provider.
        assembled = await heartbeating(assemble(self._store, request))
        whole = request.model_copy(update={"messages": assembled.messages, "prior": None})
        # A missing key is this worker's problem, not the provider's: it is raised above,
        # outside the circuit. The circuit sits inside ``heartbeating`` so a cancellation
        # reaches it as CancelledError (neutral unless Temporal timed the attempt out).
        response = await heartbeating(
            self._breakers.call(
                request.model.base_url.rstrip("/"),
                lambda: self._provider.chat(whole, api_key),
            )
        )
        if self._spend is not None:
            await self._spend.paid(request, response)
        check_response_size(request, response)
        content_ref = await store_answer(self._store, response.content)
        return response.model_copy(
            update={"transcript": assembled.node, "content_ref": content_ref}
        )


def check_response_size(request: ChatRequest, response: ChatResponse) -> None:
    """Fail an answer over ``max_response_bytes`` (non-retryable: it is paid for, and asking
    again would be paid again). Its usage travels in the error's details, so the workflow
    still counts the call against the run's budgets."""
    size = len(response.model_dump_json().encode())
    limit = request.model.max_response_bytes
    if size > limit:
        raise too_large(
            f"model {request.model.name!r} answered {size:,} bytes, over its"
            f" max_response_bytes={limit:,}; not retried (the answer is paid for)",
            response.usage.model_dump(),
        )
