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
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from keel.contracts import (
        AgentInput,
        ApprovalRequest,
        ChatMessage,
        Decision,
        DecisionOutcome,
        Guidance,
        LimitError,
        Limits,
        Profile,
        ProgressEvent,
        Resolution,
        ResolveOutcome,
        RunOutcome,
        RunResult,
        RunState,
        RunStatus,
        UnresolvedCall,
        effective_limits,
        names,
    )
    from workflows.agent.call_ids import with_unique_ids
    from workflows.agent.escalation import guided_past
    from workflows.agent.model_step import ModelStep, before_model_call
    from workflows.agent.no_progress import ProgressTracker
    from workflows.agent.resolve_handlers import ResolveHandlers
    from workflows.agent.start import (
        START_FAILURES,
        check_profile,
        discover_tools,
        load_profile,
        parse_input,
        run_servers,
    )
    from workflows.agent.state import AgentState, RunContext, Stop
    from workflows.agent.turn import run_tool_turn
    from workflows.approvals.handlers import ApprovalHandlers
    from workflows.failures import RunFailed, RunHalted
    from workflows.report.reporter import Reporter
    from workflows.tools.check import CheckPipeline

KEEL_STATE = SearchAttributeKey.for_keyword(names.SA_STATE)
KEEL_FAILURE_CLASS = SearchAttributeKey.for_keyword(names.SA_FAILURE_CLASS)
KEEL_PROFILE = SearchAttributeKey.for_keyword(names.SA_PROFILE)
# workflow.patched id: runs that end without a result also upsert KeelFailureClass.
FAILURE_CLASS_WITHOUT_RESULT = "failure-class-without-result"


@workflow.defn(name=names.WORKFLOW_TYPE)
class AgentWorkflow:
    """Runs one agent task under a profile; see the module docstring for the loop."""

    def __init__(self) -> None:
        self._state = AgentState()
        # Live progress: a workflow stream (signals publish, updates long-poll, queries read
        # a closed run). The SDK requires constructing it directly in __init__.
        self._stream = WorkflowStream()
        topic = self._stream.topic(names.PROGRESS_TOPIC, type=ProgressEvent)
        self._reporter = Reporter(topic.publish, self._set_last_event)
        self._approvals = ApprovalHandlers(self._state.desk, self._reporter)
        self._lost = ResolveHandlers(self._state, self._set_state, self._on_pending_change)

    # ---------------------------------------------------------------- public interface

    @workflow.run
    async def run(self, request: Any = None, *extra: Any) -> RunResult:
        """Run one task. ``request`` is an ``AgentInput`` or its JSON form.

        Typed as ``Any`` on purpose: with a concrete type, a payload that does not decode
        (``--input '"hello"'``) fails every workflow task and the run hangs; decoding here
        turns it into a failed workflow with a message naming the field. For the same reason
        the run takes any number of inputs (``--input`` given twice, or not at all) and fails
        with ``InvalidInput`` unless there is exactly one.
        """
        try:
            return await self._run(request, extra)
        except ApplicationError as exc:
            failure_class = START_FAILURES.get(exc.type or "", "config_error")
            self._ended_without_result(failure_class, exc.message)
            raise
        except asyncio.CancelledError:
            self._ended_without_result("cancelled", "the run was cancelled")
            raise
        finally:
            await self._release_watchers()

    @workflow.query(name=names.QUERY_STATUS)
    def status(self) -> RunStatus:
        state = self._state
        return RunStatus(
            state=state.phase,
            profile=state.profile,
            step=state.ledger.model_calls,
            tool_calls=state.ledger.tool_calls,
            usage=state.ledger.usage,
            cost_usd=state.ledger.cost_usd,
            last_event=state.last_event,
            pending_approvals=len(state.desk.pending),
            unresolved_calls=state.lost.unresolved(),
        )

    @workflow.signal(name=names.SIGNAL_GUIDE)
    def guide(self, guidance: Guidance) -> None:
        """A human's instruction for an escalated run (kept if it arrives early)."""
        self._state.guidance.append(guidance)

    @workflow.query(name=names.QUERY_PENDING_APPROVALS)
    def pending_approvals(self) -> list[ApprovalRequest]:
        """Tool calls waiting for a human decision, oldest first."""
        return self._approvals.pending()

    @workflow.signal(name=names.SIGNAL_DECIDE)
    def decide(self, payload: Any) -> None:
        """A human decision, fire and forget (see workflows/approvals/handlers.py)."""
        self._approvals.signal(payload)

    @workflow.update(name=names.UPDATE_DECIDE)
    async def decide_update(self, decision: Decision) -> DecisionOutcome:
        """A human decision that answers: accepted or not, and what came of it."""
        return await self._approvals.update(decision)

    @decide_update.validator
    def _validate_decision(self, decision: Decision) -> None:
        self._approvals.validate(decision)

    @workflow.query(name=names.QUERY_UNRESOLVED_CALLS)
    def unresolved_calls(self) -> list[UnresolvedCall]:
        """Writes whose answer was lost, waiting for a human's ``resolve`` (resolve_handlers.py)."""
        return self._lost.unresolved()

    @workflow.signal(name=names.SIGNAL_RESOLVE)
    def resolve(self, payload: Any) -> None:
        self._lost.signal(payload)

    @workflow.update(name=names.UPDATE_RESOLVE)
    def resolve_update(self, resolution: Resolution) -> ResolveOutcome:
        return self._lost.update(resolution)

    @resolve_update.validator
    def _validate_resolution(self, resolution: Resolution) -> None:
        self._lost.validate(resolution)

    # ---------------------------------------------------------------- the run

    async def _run(self, request: Any, extra: tuple[Any, ...] = ()) -> RunResult:
        try:
            agent_input = parse_input(request, extra)
        except ApplicationError:
            self._set_state("failed")
            raise
        self._state.profile = self._reporter.profile = agent_input.profile
        self._state.phase = "running"
        # One upsert, as before KeelProfile existed, so recorded histories still replay.
        workflow.upsert_search_attributes(
            [KEEL_STATE.value_set("running"), KEEL_PROFILE.value_set(agent_input.profile)]
        )
        self._state.last_event = f"loading profile {agent_input.profile}"
        try:
            profile = await load_profile(agent_input.profile)
            self._state.model = profile.model.name
            self._reporter.policies = profile.tools
            limits = effective_limits(profile.limits, agent_input.limits)
            await self._approvals.start(profile.approvals)  # approver keys, if required
        except LimitError as exc:
            self._set_state("failed")
            raise ApplicationError(
                str(exc), type=names.ERROR_INVALID_INPUT, non_retryable=True
            ) from None
        except ApplicationError:
            self._set_state("failed")
            raise
        self._reporter.run_started(profile.model.name, agent_input.task, agent_input.principal,
                                   limits)  # fmt: skip
        return await self._within_wall_clock(profile, agent_input, limits)

    async def _within_wall_clock(
        self, profile: Profile, agent_input: AgentInput, limits: Limits
    ) -> RunResult:
        """The loop, raced against a durable timer for the remaining wall clock."""
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
        self._reporter.stop(self._state.ledger.model_calls, stop.reason, stop.failure_class,
                            message, "halt")  # fmt: skip
        return self._finish("halted", stop=stop)

    async def _guarded(
        self, profile: Profile, agent_input: AgentInput, limits: Limits
    ) -> RunResult:
        try:
            return await self._loop(profile, await self._context(profile, agent_input, limits))
        except RunFailed as failure:
            self._state.last_event = f"failed: {failure.message}"
            return self._finish(
                "halted" if isinstance(failure, RunHalted) else "failed",
                stop=Stop("", failure.failure_class, failure.message),
                error=failure.message,
            )

    async def _context(
        self, profile: Profile, agent_input: AgentInput, limits: Limits
    ) -> RunContext:
        """List the tools, check the profile against them, and wire up the run."""
        self._state.last_event = "listing tools"
        catalog, catalog_all = await discover_tools(profile.servers, agent_input.principal)
        servers = run_servers(profile, workflow.patched(names.PATCH_SERVER_TRUST))
        check_profile(profile, catalog_all, servers)
        checks = CheckPipeline(catalog, catalog_all, profile.tools, servers,
                               agent_input.principal)  # fmt: skip
        self._approvals.checks = checks
        self._lost.wire(profile)
        self._state.transcript.append(
            ChatMessage(role="system", content=profile.system_prompt),
            ChatMessage(role="user", content=agent_input.task),
        )
        return RunContext(
            workflow_id=workflow.info().workflow_id,
            principal=agent_input.principal,
            limits=limits,
            servers=servers,
            policies=profile.tools,
            approvals=profile.approvals,
            catalog=catalog,
            checks=checks,
            tracker=ProgressTracker(limits.max_repeated_calls, limits.max_idle_steps),
            state=self._state,
            reporter=self._reporter,
            on_pending_change=self._on_pending_change,
        )

    async def _loop(self, profile: Profile, ctx: RunContext) -> RunResult:
        """Model step, tool turn, repeat — until an answer without tool calls or a stop."""
        state, catalog = self._state, ctx.catalog
        model = ModelStep(profile, state.ledger, state.transcript, self._reporter,
                          self._set_last_event)  # fmt: skip
        while True:
            cap, stop = before_model_call(
                profile, ctx.limits, state.ledger, state.transcript.state, catalog, ctx.tracker
            )
            if stop is None:
                response = await model.call(catalog, cap)
                # Missing or repeated ids are renamed before the conversation holds them.
                calls, renamed = with_unique_ids(state.ledger.model_calls, response.tool_calls)
                state.transcript.append(
                    ChatMessage(role="assistant", content=response.content, tool_calls=calls)
                )
                if not calls:
                    return self._finish("completed", final_answer=response.content or "")
                state.last_event = f"step {state.ledger.model_calls}: {len(calls)} tool call(s)"
                messages, stop = await run_tool_turn(ctx, calls, response.content, renamed)
                state.transcript.append(*messages)
            if stop is not None and not await guided_past(profile, ctx, stop, self._set_state):
                return self._finish("halted", stop=stop)

    # ---------------------------------------------------------------- bookkeeping

    def _on_pending_change(self) -> None:
        state = self._state
        if state.phase in ("running", "awaiting_approval"):
            waiting = bool(state.desk.pending)
            self._set_state("awaiting_approval" if waiting else "running")
            if waiting:
                tools = ", ".join(r.tool for r in state.desk.pending.values())
                state.last_event = f"waiting for approval: {tools}"

    def _set_state(self, phase: RunState) -> None:
        self._state.phase = phase
        workflow.upsert_search_attributes([KEEL_STATE.value_set(phase)])

    def _finish(
        self,
        status: RunOutcome,
        *,
        final_answer: str | None = None,
        stop: Stop | None = None,
        error: str | None = None,
    ) -> RunResult:
        phase: RunState = (
            "completed" if status == "completed" else ("halted" if status == "halted" else "failed")
        )
        self._set_state(phase)
        if stop is not None:
            workflow.upsert_search_attributes([KEEL_FAILURE_CLASS.value_set(stop.failure_class)])
            self._state.last_event = (
                f"{status}: {stop.reason or stop.failure_class}: {stop.message}"
            )
        else:
            self._state.last_event = status
        self._approvals.run_ended(status, error or (stop.message if stop else None))
        result = self._result(
            status,
            final_answer=final_answer,
            stop_reason=(stop.reason or None) if stop else None,
            failure_class=stop.failure_class if stop else None,
            error=error if error is not None else (stop.message if stop else None),
        )
        self._reporter.finished(result, self._state.ledger.model_calls)
        return result

    def _ended_without_result(self, failure_class: str, message: str) -> None:
        """A run that could not start (bad input, profile, configuration) or was cancelled
        ends as a failed or cancelled workflow, not a result; watchers, logs and metrics
        still hear of it, and ``KeelFailureClass`` names why (a new command: histories
        recorded before it replay without it)."""
        if workflow.patched(FAILURE_CLASS_WITHOUT_RESULT):
            workflow.upsert_search_attributes([KEEL_FAILURE_CLASS.value_set(failure_class)])
        self._approvals.run_ended(failure_class, message)
        self._reporter.finished(
            self._result("failed", failure_class=failure_class, error=message),
            self._state.ledger.model_calls,
        )

    def _result(self, status: RunOutcome, **outcome: Any) -> RunResult:
        """The run's result: ``outcome`` fields plus what the ledger and the desk hold."""
        state = self._state
        return RunResult(
            status=status,
            profile=state.profile,
            model=state.model,
            steps=state.ledger.steps,
            usage=state.ledger.usage,
            tool_calls=state.ledger.tool_calls,
            model_calls=state.ledger.model_calls,
            cost_usd=round(state.ledger.cost_usd, 9),
            approvals=state.desk.audit,
            guidance=state.guidance_used,
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
        self._state.last_event = message
