"""One model step of a run: the stop checks before it, then the call down the fallback chain.

Workflow code (deterministic): the call itself is the ``keel.llm.chat`` activity. The step is
recorded in the run's ledger (usage, cost, a ``StepRecord``) and reported to observers
(workflows/report/reporter.py) only once the workflow has its outcome, so retries never
duplicate it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.llm import LLMActivities
    from activities.payloads import PAYLOAD_TOO_LARGE, SAFE_PAYLOAD_BYTES, TEMPORAL_PAYLOAD_ERROR
    from keel.contracts import (
        ChatRequest,
        ChatResponse,
        ContextView,
        ConversationState,
        Limits,
        ModelSettings,
        Price,
        Profile,
        SpendTag,
        StepRecord,
        ToolSpec,
        Usage,
        cache_savings,
        call_cost,
    )
    from workflows.agent.budget import (
        BudgetRefusal,
        add_cost,
        add_usage,
        estimate_prompt_tokens,
        plan_call,
    )
    from workflows.agent.budget import tokens_used as count_tokens
    from workflows.agent.no_progress import ProgressTracker
    from workflows.agent.route_policy import Route
    from workflows.agent.state import Ledger, RunContext, Stop
    from workflows.agent.transcript import Transcript
    from workflows.failures import RunFailed, RunHalted, classify
    from workflows.report.reporter import Reporter

# The LLM activity heartbeats every 2 s: a lost worker is noticed in 10 s, not after the
# model timeout, and a cancelled call (wall clock reached) aborts its HTTP request.
LLM_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# With a payload store (Profile.payload_store) an input this big is stored, history holds a
# reference; the ceiling is what one stored payload may weigh (keel/runtime/store/payloads.py).
STORED_PAYLOAD_BYTES = 256 * 1024 * 1024
UNPRICED = Price(input_per_mtok=0.0, output_per_mtok=0.0)


def dearest_price(model: ModelSettings) -> Price:
    """The price a budget check must assume: the dearest of the model and its fallbacks, as
    any of them may serve the call. Runs whose profile was resolved before prices existed
    (their history has none) keep replaying and run on without cost accounting."""
    prices = [m.price or UNPRICED for m in model.chain()]
    return Price(
        input_per_mtok=max(p.input_per_mtok for p in prices),
        output_per_mtok=max(p.output_per_mtok for p in prices),
        cached_input_per_mtok=max(
            p.cached_input_per_mtok if p.cached_input_per_mtok is not None else p.input_per_mtok
            for p in prices
        ),
    )


def before_model_call(
    profile: Profile,
    limits: Limits,
    ledger: Ledger,
    conversation: ConversationState,
    catalog: list[ToolSpec],
    tracker: ProgressTracker,
    model: ModelSettings | None = None,
) -> tuple[int | None, Stop | None]:
    """Every stop condition, checked before the model is called; else the output cap.

    ``model`` is what will serve the call (a routing tier, with its fallbacks; default the
    profile's ``[model]``): the call is projected at the dearest price of that chain."""
    serving = model if model is not None else profile.model
    if tracker.stalled:
        return None, Stop("no_progress", "no_progress", tracker.reason or "no progress")
    if ledger.model_calls >= limits.max_steps:
        message = f"step limit reached (max_steps={limits.max_steps})"
        return None, Stop("step_limit", "step_limit", message)
    decision = plan_call(
        limits,
        count_tokens(ledger.usage),
        ledger.cost_usd,
        estimate_prompt_tokens(conversation, catalog),
        max(m.max_output_tokens for m in serving.chain()),
        dearest_price(serving),
    )
    if isinstance(decision, BudgetRefusal):
        return None, Stop(decision.reason, decision.reason, decision.message)
    return decision.max_output_tokens, None


@dataclass
class ModelStep:
    """What one model step works with: the run's ledger, conversation and observers."""

    profile: Profile
    ledger: Ledger
    transcript: Transcript
    reporter: Reporter
    on_event: Callable[[str], None]
    spend: SpendTag | None = None  # whose spend the calls are (keel/runtime/spend)

    @classmethod
    def for_run(
        cls, profile: Profile, ctx: RunContext, on_event: Callable[[str], None]
    ) -> ModelStep:
        """The model step of a run's loop: its ledger, conversation and reporter, and the spend
        tag naming the run, profile and principal (and the profile's ``[spend]`` budgets)."""
        state = ctx.state
        spend = SpendTag(run_id=ctx.workflow_id, profile=profile.name,
                         principal=ctx.principal.id, budgets=profile.spend)  # fmt: skip
        return cls(profile, state.ledger, state.transcript, ctx.reporter, on_event, spend)

    async def call(
        self, catalog: list[ToolSpec], cap: int | None, *, route: Route | None = None,
        view: ContextView | None = None, purpose: str | None = None, note: str | None = None,
    ) -> ChatResponse:  # fmt: skip
        """One model step: the primary model, then each fallback while one fails for good
        (its circuit is open, retries did not fix it, or it rejected the request).

        ``route``: the tier serving it (default ``[model]``); ``view``: how the context budget
        trims the conversation; ``purpose``: "summary", "final answer"...; ``note``: what the
        context budget did. All four land in the step record."""
        self.ledger.model_calls += 1
        step = self.ledger.model_calls
        primary = self.profile.tier_model(route.tier if route else None)
        chain = primary.chain()
        fell_back: list[str] = []
        started = workflow.now()
        marks = _Marks.of(route, view, purpose, note)
        self.reporter.model_started(step, primary.name, *marks.routed())
        self._check_request_size(catalog, step, started)
        for index, model in enumerate(chain):
            last = index == len(chain) - 1
            self.on_event(f"step {step}: calling {model.name}")
            try:
                response = await self._chat(model, catalog, cap, step, last, marks)
            except ActivityError as exc:
                failure, message = classify(exc, f"model {model.name!r}")
                paid = paid_usage(exc)
                spent = self._charge(model, paid) if paid is not None else None
                if not last:
                    fell_back.append(f"{model.name}: {message}")
                    continue
                detail = "; ".join([*fell_back, message])
                record = _record(step, model.name, started, outcome="failed", detail=detail,
                                 usage=paid, cost_usd=spent, **marks.fields())  # fmt: skip
                self.ledger.steps.append(record)
                stop = RunHalted if failure == "spend_limit" else RunFailed  # a bound, not a fault
                raise stop(failure, message) from None
            self.transcript.sent(response.transcript)
            self.transcript.offer(response.content_ref)  # the answer, once in history
            cost = self._charge(model, response.usage)
            detail = f"{len(response.tool_calls)} tool call(s)" if response.tool_calls else "answer"
            if fell_back:
                detail = f"{detail}; served by fallback {model.name} after " + "; ".join(fell_back)
            self.ledger.steps.append(
                _record(
                    step,
                    response.model,
                    started,
                    latency_ms=response.latency_ms,
                    usage=response.usage,
                    attempts=response.attempt,
                    detail=detail,
                    cost_usd=cost,
                    **marks.fields(),
                    **cache_fields(response.usage, model.price),
                )
            )
            self.reporter.model_finished(step, response, cost, *marks.routed())
            return response
        raise AssertionError("unreachable: the chain has at least the primary model")

    def _check_request_size(self, catalog: list[ToolSpec], step: int, started: datetime) -> None:
        """Fail the run, rather than the workflow task, when the model call no longer fits in
        an activity input: Temporal would refuse to schedule the call, again at every task.
        With a content store the input is the previous node and what is new, and a worker with
        a payload store (``Profile.payload_store``) stores any large input, so only a new
        message over STORED_PAYLOAD_BYTES fails; without one, 2 MB, the conversation and all."""
        request = ChatRequest(model=self.profile.model, messages=self.transcript.pending,
                              prior=self.transcript.prior, tools=catalog,
                              conversation_id=workflow.info().workflow_id, step=step)  # fmt: skip
        size = len(request.model_dump_json().encode())
        limit = STORED_PAYLOAD_BYTES if self.profile.payload_store else SAFE_PAYLOAD_BYTES
        if size <= limit:
            return
        message = (
            f"the model call's input is {size:,} bytes, over the {limit:,} bytes an activity"
            " input may carry: a message this large (a task, guidance) cannot travel inline,"
            " nor the whole conversation of a worker without a content store (KEEL_STORE)"
        )
        self.ledger.steps.append(
            _record(step, self.profile.model.name, started, outcome="failed", detail=message)
        )
        raise RunFailed("payload_too_large", message)

    def _charge(self, model: ModelSettings, usage: Usage) -> float:
        """Add a call's usage and cost to the ledger (totals never decrease); its cost."""
        cost = call_cost(usage, model.price or UNPRICED)
        self.ledger.usage = add_usage(self.ledger.usage, usage)
        self.ledger.cost_usd = add_cost(self.ledger.cost_usd, cost)
        return cost

    async def _chat(
        self, model: ModelSettings, catalog: list[ToolSpec], cap: int | None, step: int,
        last: bool, marks: _Marks,
    ) -> ChatResponse:  # fmt: skip
        """The ``keel.llm.chat`` activity for ``model``. While a fallback remains, an open
        circuit is not waited out: it fails the attempt at once so the next model serves."""
        request = ChatRequest(
            model=model,
            messages=self.transcript.pending,
            prior=self.transcript.prior,
            tools=catalog,
            conversation_id=workflow.info().workflow_id,
            max_output_tokens=cap if cap is not None and cap < model.max_output_tokens else None,
            step=step,
            tier=marks.route.tier if marks.route else None,
            route=marks.route.why if marks.route else None,
            view=marks.view,
            spend=self.spend,
        )
        return await workflow.execute_activity_method(
            LLMActivities.chat,
            request,
            start_to_close_timeout=timedelta(seconds=model.timeout_seconds),
            schedule_to_close_timeout=(
                timedelta(seconds=model.schedule_to_close_seconds)
                if model.schedule_to_close_seconds
                else None
            ),
            heartbeat_timeout=LLM_HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=model.max_attempts,
                # Temporal's own PayloadsTooLarge (a namespace limit below Keel's check) would
                # fail the same way again after paying for the answer again: never retried.
                non_retryable_error_types=[TEMPORAL_PAYLOAD_ERROR]
                if last
                else ["CircuitOpen", TEMPORAL_PAYLOAD_ERROR],
            ),
            summary=f"chat {model.name} · step {step}",
        )


def paid_usage(error: ActivityError) -> Usage | None:
    """The usage of a call that failed after the provider answered (an answer over the payload
    limit carries it in its details): still paid, so still counted."""
    cause = error.cause
    if not isinstance(cause, ApplicationError) or cause.type != PAYLOAD_TOO_LARGE:
        return None
    details = cause.details
    if not details or not isinstance(details[0], dict):
        return None
    try:
        return Usage.model_validate(details[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class _Marks:
    """What a step's caller says of it: its route, context view, purpose and context note."""

    route: Route | None
    view: ContextView | None
    purpose: str | None
    note: str | None

    @classmethod
    def of(
        cls, route: Route | None, view: ContextView | None, purpose: str | None, note: str | None
    ) -> _Marks:
        """The marks of a step; a re-asked answer's purpose is its route's (routing.py)."""
        if purpose is None and route is not None:
            purpose = route.purpose
        return cls(route, view, purpose, note)

    def routed(self) -> tuple[str | None, str | None]:
        """The tier serving the step and why (None, None: unrouted), for its progress."""
        return (self.route.tier, self.route.why) if self.route is not None else (None, None)

    def fields(self) -> dict[str, Any]:
        """The step record's fields for them (none when unset, so old records stay equal)."""
        fields: dict[str, Any] = {}
        if self.route is not None:
            fields["tier"], fields["route"] = self.route.tier, self.route.why
        if self.purpose is not None:
            fields["purpose"] = self.purpose
        if self.note is not None:
            fields["context"] = self.note
        return fields


def cache_fields(usage: Usage, price: Price | None) -> dict[str, Any]:
    """``cache_saved_usd`` of a call that read or wrote a prompt cache (none otherwise, so the
    records of calls without caching stay as they were)."""
    if price is None or not (usage.cached_tokens or usage.cache_write_tokens):
        return {}
    return {"cache_saved_usd": cache_savings(usage, price)}


def _record(step: int, name: str, started: datetime, **fields: Any) -> StepRecord:
    if fields.get("latency_ms") is None:
        fields["latency_ms"] = (workflow.now() - started).total_seconds() * 1000
    return StepRecord(step=step, kind="model", name=name, started_at=started, **fields)
