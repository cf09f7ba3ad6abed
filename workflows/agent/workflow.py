"""AgentWorkflow: one agent run as a durable Temporal workflow, bounded in code.

Deterministic orchestration only. Every model call is the ``keel.llm.chat`` activity; every
tool listing and tool call is an MCP activity from ``temporalio-mcp``. The loop:

1. resolve the profile (activity: the resolved profile, with its price, lands in history);
2. list each server's tools once (kept in workflow state, so replay-safe);
3. before every model call check every stop condition — steps, tokens and cost (including the
   projected cost of that call), no progress; call the model; validate and run the turn's
   tool calls concurrently; feed results back; repeat until the model answers without tool
   calls or a stop condition ends the run. A durable timer bounds the wall clock.

A tripped limit halts the run (``status="halted"``) or, if the profile says ``escalate``,
waits (bounded) for a human ``guide`` signal that adds an instruction and may extend the
limits once. The run always ends with a typed ``RunResult``; only input that cannot start a
run at all fails the workflow, with a non-retryable ``ApplicationError`` naming the field.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, Field, ValidationError

    from keel.contracts import (
        PROGRESS_TOPIC,
        AgentInput,
        ChatMessage,
        LimitOverrides,
        Limits,
        Profile,
        ProgressEvent,
        RunOutcome,
        RunResult,
        RunState,
        RunStatus,
        ServerSettings,
        ToolSpec,
        names,
    )
    from keel.contracts.errors import describe_validation_error
    from keel.contracts.limits import LimitError, effective_limits, extend_limits
    from workflows.agent.model_step import ModelStep, before_model_call
    from workflows.agent.no_progress import ProgressTracker
    from workflows.agent.state import Ledger, Stop, TurnContext
    from workflows.agent.turn import run_tool_turn
    from workflows.approvals.handlers import ApprovalHandlers
    from workflows.approvals.policy import ApprovalDesk
    from workflows.failures import classify
    from workflows.report.progress_text import template_problems
    from workflows.report.reporter import Reporter
    from workflows.tools.catalog import CatalogError, build_catalog
    from workflows.tools.mcp_calls import RunFailed, list_tools
    from workflows.tools.validation import PolicyError, Validator, check_policies

KEEL_STATE = SearchAttributeKey.for_keyword(names.SA_STATE)
KEEL_FAILURE_CLASS = SearchAttributeKey.for_keyword(names.SA_FAILURE_CLASS)
KEEL_PROFILE = SearchAttributeKey.for_keyword(names.SA_PROFILE)
PROFILE_LOAD_TIMEOUT = timedelta(seconds=30)
# Failure classes of runs that fail before they start (workflow failures, not results).
_START_FAILURES = {
    "InvalidInput": "invalid_input",
    "ProfileError": "config_error",
    "ConfigError": "config_error",
    "UpstreamUnavailable": "upstream_unavailable",
}


class Guidance(BaseModel):
    """Payload of the ``guide`` signal: a human's instruction to an escalated run."""

    instruction: str = Field(min_length=1, max_length=20_000)
    extend: LimitOverrides | None = None
    by: str | None = None


def parse_input(raw: Any) -> AgentInput:
    """Validate workflow input; a mistake fails the workflow with a message naming the field."""
    if isinstance(raw, AgentInput):
        return raw
    try:
        return AgentInput.model_validate(raw)
    except ValidationError as exc:
        raise ApplicationError(
            "invalid AgentWorkflow input:\n" + describe_validation_error(exc, "input"),
            type="InvalidInput",
            non_retryable=True,
        ) from None


@workflow.defn(name="AgentWorkflow")
class AgentWorkflow(ApprovalHandlers):
    """Runs one agent task under a profile; see the module docstring for the loop."""

    def __init__(self) -> None:
        self._state: RunState = "running"
        self._profile_name = ""
        self._model_name = ""
        self._messages: list[ChatMessage] = []
        self._ledger = Ledger()
        self._last_event = "starting"
        self._guidance: list[Guidance] = []
        self._escalated = False
        self._guidance_used = 0
        self._desk = ApprovalDesk()
        self._validator: Validator | None = None
        # Live progress: a workflow stream (signals publish, updates long-poll, queries read
        # a closed run). The SDK requires constructing it directly in __init__.
        self._stream = WorkflowStream()
        topic = self._stream.topic(PROGRESS_TOPIC, type=ProgressEvent)
        self._reporter = Reporter(topic.publish, self._set_last_event)

    # ---------------------------------------------------------------- public interface

    @workflow.run
    async def run(self, request: Any) -> RunResult:
        """Run one task. ``request`` is an ``AgentInput`` or its JSON form.

        Typed as ``Any`` on purpose: with a concrete type, a payload that does not decode
        (``--input '"hello"'``) fails every workflow task and the run hangs; decoding here
        turns it into a failed workflow with a message naming the field.
        """
        try:
            return await self._run(request)
        except ApplicationError as exc:
            self._ended_without_result(
                _START_FAILURES.get(exc.type or "", "config_error"), exc.message
            )
            raise
        except asyncio.CancelledError:
            self._ended_without_result("cancelled", "the run was cancelled")
            raise
        finally:
            await self._release_watchers()

    async def _run(self, request: Any) -> RunResult:
        try:
            agent_input = parse_input(request)
        except ApplicationError:
            self._set_state("failed")
            raise
        self._profile_name = agent_input.profile
        self._reporter.profile = agent_input.profile
        self._state = "running"
        # One upsert, as before KeelProfile existed, so recorded histories still replay.
        workflow.upsert_search_attributes(
            [KEEL_STATE.value_set("running"), KEEL_PROFILE.value_set(agent_input.profile)]
        )
        profile = await self._load_profile(agent_input.profile)
        self._model_name = profile.model.name
        self._reporter.policies = profile.tools
        try:
            limits = effective_limits(profile.limits, agent_input.limits)
        except LimitError as exc:
            self._set_state("failed")
            raise ApplicationError(str(exc), type="InvalidInput", non_retryable=True) from None
        self._reporter.run_started(profile.model.name, agent_input.task, agent_input.principal,
                                   limits)  # fmt: skip
        loop = asyncio.ensure_future(self._guarded(profile, agent_input, limits))
        if limits.max_wall_clock_seconds is None:
            return await loop
        elapsed = (workflow.now() - workflow.info().start_time).total_seconds()
        remaining = max(0.0, limits.max_wall_clock_seconds - elapsed)
        done, _ = await workflow.wait([loop], timeout=remaining)
        if done:
            return await loop
        # The durable timer fired: cancel whatever is in flight and end cleanly.
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        message = f"wall clock limit of {limits.max_wall_clock_seconds:g}s reached"
        stop = Stop("wall_clock", "wall_clock", message)
        self._reporter.stop(self._ledger.model_calls, stop.reason, stop.failure_class, message,
                            "halt")  # fmt: skip
        return self._finish("halted", stop=stop)

    @workflow.query(name="status")
    def status(self) -> RunStatus:
        return RunStatus(
            state=self._state,
            profile=self._profile_name,
            step=self._ledger.model_calls,
            tool_calls=self._ledger.tool_calls,
            usage=self._ledger.usage,
            cost_usd=self._ledger.cost_usd,
            last_event=self._last_event,
            pending_approvals=len(self._desk.pending),
        )

    @workflow.signal(name="guide")
    def guide(self, guidance: Guidance) -> None:
        """A human's instruction for an escalated run (kept if it arrives early)."""
        self._guidance.append(guidance)

    # ---------------------------------------------------------------- the loop

    async def _guarded(
        self, profile: Profile, agent_input: AgentInput, limits: Limits
    ) -> RunResult:
        try:
            return await self._loop(profile, agent_input, limits)
        except RunFailed as failure:
            self._last_event = f"failed: {failure.message}"
            return self._finish(
                "failed",
                stop=Stop("", failure.failure_class, failure.message),
                error=failure.message,
            )

    async def _loop(self, profile: Profile, agent_input: AgentInput, limits: Limits) -> RunResult:
        catalog, catalog_all = await self._discover_tools(profile.servers)
        try:
            check_policies(profile.tools, catalog_all)
        except PolicyError as exc:
            raise RunFailed("config_error", f"profile {profile.name!r}: {exc}") from None
        problems = template_problems(profile.tools, catalog_all)
        if problems:
            raise RunFailed(
                "config_error",
                f"profile {profile.name!r}: invalid progress template:\n" + "\n".join(problems),
            )
        tracker = ProgressTracker(limits.max_repeated_calls, limits.max_idle_steps)
        ctx = TurnContext(
            workflow_id=workflow.info().workflow_id,
            principal=agent_input.principal,
            limits=limits,
            servers={s.name: s for s in profile.servers},
            policies=profile.tools,
            catalog_all=catalog_all,
            validator=Validator(catalog),
            tracker=tracker,
            ledger=self._ledger,
            desk=self._desk,
            approvals=profile.approvals,
            on_pending_change=self._on_pending_change,
            reporter=self._reporter,
        )
        self._validator = ctx.validator
        self._messages = [
            ChatMessage(role="system", content=profile.system_prompt),
            ChatMessage(role="user", content=agent_input.task),
        ]
        model = ModelStep(profile, self._ledger, self._messages, self._reporter,
                          self._set_last_event)  # fmt: skip
        while True:
            cap, stop = before_model_call(
                profile, ctx.limits, self._ledger, self._messages, catalog, tracker
            )
            if stop is None:
                response = await model.call(catalog, cap)
                self._messages.append(
                    ChatMessage(
                        role="assistant", content=response.content, tool_calls=response.tool_calls
                    )
                )
                if not response.tool_calls:
                    return self._finish("completed", final_answer=response.content or "")
                self._last_event = (
                    f"step {self._ledger.model_calls}: {len(response.tool_calls)} tool call(s)"
                )
                messages, stop = await run_tool_turn(ctx, response.tool_calls, response.content)
                self._messages.extend(messages)
            if stop is not None:
                escalates = profile.escalation.on_limit == "escalate" and not self._escalated
                self._reporter.stop(self._ledger.model_calls, stop.reason, stop.failure_class,
                                    stop.message, "escalate" if escalates else "halt")  # fmt: skip
                guidance = await self._escalate(profile, stop)
                if guidance is None:
                    return self._finish("halted", stop=stop)
                self._reporter.guided(self._ledger.model_calls, guidance.by,
                                      guidance.instruction, guidance.extend)  # fmt: skip
                ctx.limits = extend_limits(ctx.limits, guidance.extend or LimitOverrides())
                tracker.max_repeated_calls = ctx.limits.max_repeated_calls
                tracker.max_idle_steps = ctx.limits.max_idle_steps
                tracker.reset()
                self._messages.append(
                    ChatMessage(
                        role="user", content=f"Guidance from a human: {guidance.instruction}"
                    )
                )

    async def _escalate(self, profile: Profile, stop: Stop) -> Guidance | None:
        """Wait (bounded) for a human's ``guide`` signal, once per run, if the profile says so."""
        if profile.escalation.on_limit != "escalate" or self._escalated:
            return None
        self._escalated = True
        self._set_state("awaiting_guidance")
        self._last_event = f"awaiting guidance: {stop.message}"
        self._reporter.guidance_requested(
            self._ledger.model_calls, stop.message, profile.escalation.timeout_seconds
        )
        try:
            await workflow.wait_condition(
                lambda: bool(self._guidance),
                timeout=timedelta(seconds=profile.escalation.timeout_seconds),
            )
        except TimeoutError:
            return None
        self._set_state("running")
        self._guidance_used += 1
        return self._guidance.pop(0)

    async def _load_profile(self, name: str) -> Profile:
        self._last_event = f"loading profile {name}"
        try:
            return await workflow.execute_activity(
                "keel.profile.load",
                name,
                result_type=Profile,
                start_to_close_timeout=PROFILE_LOAD_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1)),
                summary=f"load profile {name}",
            )
        except ActivityError as exc:
            _, message = classify(exc, f"profile {name!r}")
            cause = exc.cause
            error_type = cause.type if isinstance(cause, ApplicationError) else None
            self._set_state("failed")
            raise ApplicationError(
                message, type=error_type or "UpstreamUnavailable", non_retryable=True
            ) from None

    async def _discover_tools(
        self, servers: list[ServerSettings]
    ) -> tuple[list[ToolSpec], list[ToolSpec]]:
        """List every server's tools once per run: (allowed for the model, all of them)."""
        self._last_event = "listing tools"
        listings = await asyncio.gather(*(list_tools(s) for s in servers))
        listed = {s.name: r for s, r in zip(servers, listings, strict=True)}
        try:
            allowed = build_catalog(servers, listed)
            everything = [
                tool
                for s in servers
                for tool in build_catalog([s.model_copy(update={"tools": ["*"]})], listed)
            ]
        except CatalogError as exc:
            raise RunFailed("tool_catalog_error", str(exc)) from None
        return allowed, everything

    # ---------------------------------------------------------------- bookkeeping

    def _on_pending_change(self) -> None:
        if self._state in ("running", "awaiting_approval"):
            waiting = bool(self._desk.pending)
            self._set_state("awaiting_approval" if waiting else "running")
            if waiting:
                tools = ", ".join(r.tool for r in self._desk.pending.values())
                self._last_event = f"waiting for approval: {tools}"

    def _set_state(self, state: RunState) -> None:
        self._state = state
        workflow.upsert_search_attributes([KEEL_STATE.value_set(state)])

    def _finish(
        self,
        status: RunOutcome,
        *,
        final_answer: str | None = None,
        stop: Stop | None = None,
        error: str | None = None,
    ) -> RunResult:
        state: RunState = (
            "completed" if status == "completed" else ("halted" if status == "halted" else "failed")
        )
        self._set_state(state)
        if stop is not None:
            workflow.upsert_search_attributes([KEEL_FAILURE_CLASS.value_set(stop.failure_class)])
            self._last_event = f"{status}: {stop.reason or stop.failure_class}: {stop.message}"
        else:
            self._last_event = status
        result = self._result(
            status,
            final_answer=final_answer,
            stop_reason=(stop.reason or None) if stop else None,
            failure_class=stop.failure_class if stop else None,
            error=error if error is not None else (stop.message if stop else None),
        )
        self._reporter.finished(result, self._ledger.model_calls)
        return result

    def _ended_without_result(self, failure_class: str, message: str) -> None:
        """A run that could not start (bad input, profile, configuration) or was cancelled
        ends as a failed or cancelled workflow, not a result; watchers, logs and metrics
        still hear of it."""
        self._reporter.finished(
            self._result("failed", failure_class=failure_class, error=message),
            self._ledger.model_calls,
        )

    def _result(self, status: RunOutcome, **outcome: Any) -> RunResult:
        """The run's result: ``outcome`` fields plus what the ledger and the desk hold."""
        return RunResult(
            status=status,
            profile=self._profile_name,
            model=self._model_name,
            steps=self._ledger.steps,
            usage=self._ledger.usage,
            tool_calls=self._ledger.tool_calls,
            model_calls=self._ledger.model_calls,
            cost_usd=round(self._ledger.cost_usd, 9),
            approvals=self._desk.audit,
            guidance=self._guidance_used,
            **outcome,
        )

    async def _release_watchers(self) -> None:
        """Let the stream's waiting pollers return before the run closes (else the SDK warns
        that update handlers were still running); later readers query the closed run.

        ``detach_pollers`` releases them at the next condition check; the one yield below
        lets that happen inside this workflow task. It adds no command, so it is safe for
        histories recorded before streams existed."""
        self._stream.detach_pollers()
        await workflow.wait_condition(lambda: True)

    def _set_last_event(self, message: str) -> None:
        self._last_event = message
