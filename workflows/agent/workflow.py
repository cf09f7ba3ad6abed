"""AgentWorkflow: one agent run as a durable Temporal workflow, bounded in code.

Deterministic orchestration only. Every model call is the ``keel.llm.chat`` activity; every
tool listing and tool call is an MCP activity from ``temporalio-mcp``. The loop:

1. resolve the profile (activity: the resolved profile, with its price, lands in history);
2. list each server's tools once (kept in workflow state, so replay-safe);
3. before every model call check every stop condition — steps, tokens and cost (including the
   projected cost of that call), no progress; call the model; validate and run the turn's
   tool calls concurrently; feed results back; repeat until the model answers without tool
   calls or a stop condition ends the run. A durable timer bounds the wall clock;
4. after a tool turn, at a safe point, continue as new when the history budget says so
   (workflows/agent/continuation.py): the next run of the same workflow id restores the state
   carried in a ``ContinuedRun`` and goes on; a run whose history would pass the budget halts
   (``history_limit``, workflows/agent/history_budget.py) before Temporal's limits;
5. a run that halts or fails hands over to its profile's ``[fallback]`` workflow, a child
   workflow whose outcome the result names (workflows/agent/fallback.py).

A tripped limit halts the run (``status="halted"``) or, if the profile says ``escalate``,
waits (bounded) for a human ``guide`` signal that adds an instruction and may extend the
limits once. The run always ends with a typed ``RunResult``; only input that cannot start a
run at all fails the workflow, with a non-retryable ``ApplicationError`` naming the field.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
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
        ContinuedRun,
        Decision,
        DecisionOutcome,
        Guidance,
        LimitError,
        Limits,
        Principal,
        Profile,
        ProgressEvent,
        Resolution,
        ResolveOutcome,
        RunResult,
        RunState,
        RunStatus,
        ServerSettings,
        ToolSpec,
        UnresolvedCall,
        effective_limits,
        names,
    )
    from workflows.agent.call_ids import with_unique_ids
    from workflows.agent.context import ContextKeeper
    from workflows.agent.continuation import (
        Continuation,
        Lineage,
        continued_input,
        restored_state,
        restored_tracker,
        stream_state,
    )
    from workflows.agent.escalation import guided_past
    from workflows.agent.fallback import Fallbacks
    from workflows.agent.history_budget import HistoryBudget
    from workflows.agent.model_step import ModelStep, before_model_call
    from workflows.agent.no_progress import ProgressTracker
    from workflows.agent.outcome import Outcomes
    from workflows.agent.resolve_handlers import ResolveHandlers
    from workflows.agent.routing import Router
    from workflows.agent.start import (
        START_FAILURES,
        check_profile,
        discover_tools,
        load_profile,
        parse_input,
        run_servers,
    )
    from workflows.agent.state import AgentState, RunContext, Stop, run_status
    from workflows.agent.turn import run_tool_turn
    from workflows.approvals.handlers import ApprovalHandlers
    from workflows.failures import RunFailed, RunHalted
    from workflows.report.reporter import Reporter
    from workflows.tools.check import CheckPipeline

KEEL_STATE = SearchAttributeKey.for_keyword(names.SA_STATE)
KEEL_PROFILE = SearchAttributeKey.for_keyword(names.SA_PROFILE)


@workflow.defn(name=names.WORKFLOW_TYPE)
class AgentWorkflow:
    """Runs one agent task under a profile; see the module docstring for the loop."""

    @workflow.init
    def __init__(self, request: Any = None, *extra: Any) -> None:
        # A run that continues an earlier one (continue-as-new) restores its state here,
        # before any signal, update or query of the new run is handled.
        carried = continued_input(request)
        self._state = restored_state(carried) if carried is not None else AgentState()
        self._generation = carried.generation if carried is not None else 0
        # Live progress: a workflow stream (signals publish, updates long-poll, queries read
        # a closed run), carried across continue-as-new. The SDK requires constructing it
        # directly in __init__.
        self._stream = WorkflowStream(stream_state(carried))
        topic = self._stream.topic(names.PROGRESS_TOPIC, type=ProgressEvent)
        self._reporter = Reporter(topic.publish, self._set_last_event)
        self._approvals = ApprovalHandlers(self._state.desk, self._reporter)
        self._lost = ResolveHandlers(self._state, self._set_state, self._on_pending_change)
        self._continuation: Continuation | None = None  # once the run knows its profile
        self._outcomes = Outcomes(self._state, self._approvals, self._reporter, self._set_state,
                                  self._generation)  # fmt: skip
        self._fallback = Fallbacks(self._state)  # armed once the profile is known

    # ---------------------------------------------------------------- public interface

    @workflow.run
    async def run(self, request: Any = None, *extra: Any) -> RunResult:
        """Run one task. ``request`` is an ``AgentInput`` or its JSON form — or the
        ``ContinuedRun`` an earlier run of this workflow id handed on (continue-as-new).

        Typed as ``Any`` on purpose: with a concrete type, a payload that does not decode
        (``--input '"hello"'``) fails every workflow task and the run hangs; decoding here
        turns it into a failed workflow with a message naming the field. For the same reason
        the run takes any number of inputs (``--input`` given twice, or not at all) and fails
        with ``InvalidInput`` unless there is exactly one.
        """
        try:
            return await self._fallback.after(await self._run(request, extra))
        except ApplicationError as exc:
            failure_class = START_FAILURES.get(exc.type or "", "config_error")
            self._outcomes.ended_without_result(failure_class, exc.message)
            raise
        except asyncio.CancelledError:
            self._outcomes.ended_without_result("cancelled", "the run was cancelled")
            raise
        finally:
            await self._release_watchers()

    @workflow.query(name=names.QUERY_STATUS)
    def status(self) -> RunStatus:
        return run_status(self._state, self._generation)

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
        if isinstance(agent_input, ContinuedRun):
            return await self._go_on(agent_input)
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
        self._fallback.arm(profile, agent_input.task, agent_input.principal)
        lineage = Lineage(0, workflow.info().start_time, profile, [])
        return await self._within_limits(
            lineage, limits, lambda: self._context(lineage, agent_input, limits)
        )

    async def _go_on(self, carried: ContinuedRun) -> RunResult:
        """A run that continues an earlier one: its state is restored (``__init__``); the
        profile, limits and tools are the ones it carried, never loaded again."""
        profile = carried.resolved
        self._reporter.profile = carried.profile
        self._reporter.policies = profile.tools
        lineage = Lineage(carried.generation, carried.started_at, profile, carried.catalog_all)
        self._fallback.arm(profile, "", carried.principal)  # the task is in the conversation

        async def context() -> RunContext:
            servers = run_servers(profile, workflow.patched(names.PATCH_SERVER_TRUST))
            catalogs = (carried.catalog, carried.catalog_all)
            return self._wire(profile, carried.principal, carried.limits, servers, catalogs,
                              restored_tracker(carried))  # fmt: skip

        return await self._within_limits(lineage, carried.limits, context, carried)

    async def _within_limits(
        self, lineage: Lineage, limits: Limits, context: Callable[[], Awaitable[RunContext]],
        carried: ContinuedRun | None = None,
    ) -> RunResult:  # fmt: skip
        """The loop, raced against a durable timer for the wall clock left (counted from the
        first run's start) and the history budget's watchdog (workflows/agent/history_budget.py)."""
        budget = HistoryBudget(lineage.profile.history, carried.history if carried else None)
        self._continuation = Continuation(lineage, budget, self._stream, self._reporter)
        loop = asyncio.ensure_future(self._guarded(lineage.profile, context))
        watchdog = asyncio.ensure_future(budget.watchdog())
        timeout = None
        if limits.max_wall_clock_seconds is not None:
            elapsed = (workflow.now() - lineage.started_at).total_seconds()
            timeout = max(0.0, limits.max_wall_clock_seconds - elapsed)
        done, _ = await workflow.wait(
            [loop, watchdog], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        watchdog.cancel()
        if loop in done:
            return await loop
        # The timer fired, or the history budget ran out: cancel what is in flight, end cleanly.
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        if watchdog in done:
            stop = budget.stop(*budget.now())
        else:
            message = f"wall clock limit of {limits.max_wall_clock_seconds:g}s reached"
            stop = Stop("wall_clock", "wall_clock", message)
        self._reporter.stop(self._state.ledger.model_calls, stop.reason, stop.failure_class,
                            stop.message, "halt")  # fmt: skip
        return self._outcomes.finish("halted", stop=stop)

    async def _guarded(
        self, profile: Profile, context: Callable[[], Awaitable[RunContext]]
    ) -> RunResult:
        try:
            return await self._loop(profile, await context())
        except RunFailed as failure:
            self._state.last_event = f"failed: {failure.message}"
            return self._outcomes.finish(
                "halted" if isinstance(failure, RunHalted) else "failed",
                stop=Stop("", failure.failure_class, failure.message),
                error=failure.message,
            )

    async def _context(
        self, lineage: Lineage, agent_input: AgentInput, limits: Limits
    ) -> RunContext:
        """List the tools, check the profile against them, and wire up the run."""
        profile = lineage.profile
        self._state.last_event = "listing tools"
        catalog, catalog_all = await discover_tools(profile.servers, agent_input.principal)
        servers = run_servers(profile, workflow.patched(names.PATCH_SERVER_TRUST))
        check_profile(profile, catalog_all, servers)
        lineage.catalog_all = catalog_all
        self._state.transcript.append(
            ChatMessage(role="system", content=profile.system_prompt),
            ChatMessage(role="user", content=agent_input.task),
        )
        tracker = ProgressTracker(limits.max_repeated_calls, limits.max_idle_steps)
        return self._wire(profile, agent_input.principal, limits, servers,
                          (catalog, catalog_all), tracker)  # fmt: skip

    def _wire(
        self, profile: Profile, principal: Principal, limits: Limits,
        servers: dict[str, ServerSettings], catalogs: tuple[list[ToolSpec], list[ToolSpec]],
        tracker: ProgressTracker,
    ) -> RunContext:  # fmt: skip
        catalog, catalog_all = catalogs
        checks = CheckPipeline(catalog, catalog_all, profile.tools, servers, principal)
        self._approvals.checks = checks
        self._lost.wire(profile)
        return RunContext(
            workflow_id=workflow.info().workflow_id, principal=principal, limits=limits,
            servers=servers, policies=profile.tools, approvals=profile.approvals,
            catalog=catalog, checks=checks, tracker=tracker, state=self._state,
            reporter=self._reporter, on_pending_change=self._on_pending_change,
        )  # fmt: skip

    async def _loop(self, profile: Profile, ctx: RunContext) -> RunResult:
        """Model step, tool turn, repeat — until an answer without tool calls or a stop. After
        a tool turn the run may continue as new (a safe point: workflows/agent/continuation.py)."""
        state, catalog, continuation = self._state, ctx.catalog, self._continuation
        assert continuation is not None
        model = ModelStep.for_run(profile, ctx, self._set_last_event)
        router, keeper = Router(profile, ctx), ContextKeeper(profile, ctx)
        while True:
            cap, stop = None, continuation.budget.before_model_call()
            route = router.next(state.ledger.model_calls + 1)
            if stop is None:
                view, note = await keeper.before_step(model, catalog)  # may summarize first
                conversation = state.transcript.state
                serving = profile.tier_model(route.tier) if route else None
                cap, stop = before_model_call(profile, ctx.limits, state.ledger, conversation,
                                              catalog, ctx.tracker, serving)  # fmt: skip
            if stop is None:
                response = await model.call(catalog, cap, route=route, view=view, note=note)
                if router.answered(response):  # asked again on a stronger tier (routing.py)
                    continue
                # Missing or repeated ids are renamed before the conversation holds them.
                calls, renamed = with_unique_ids(state.ledger.model_calls, response.tool_calls)
                state.transcript.append(
                    ChatMessage(role="assistant", content=response.content, tool_calls=calls)
                )
                if not calls:
                    return self._outcomes.finish("completed", final_answer=response.content or "")
                state.last_event = f"step {state.ledger.model_calls}: {len(calls)} tool call(s)"
                messages, stop = await run_tool_turn(ctx, calls, response.content, renamed)
                state.transcript.append(*messages)
                router.turn_done(state.ledger, state.ledger.model_calls)
                if stop is None:
                    await continuation.at_safe_point(state, ctx, self._approvals.idle())
            if stop is not None and not await self._past(profile, ctx, stop):
                return self._outcomes.finish("halted", stop=stop)

    async def _past(self, profile: Profile, ctx: RunContext, stop: Stop) -> bool:
        """Whether the run goes on past ``stop`` (guidance); the history budget halts."""
        if stop.failure_class == "history_limit":
            self._reporter.stop(self._state.ledger.model_calls, stop.reason, stop.failure_class,
                                stop.message, "halt")  # fmt: skip
            return False
        return await guided_past(profile, ctx, stop, self._set_state)

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
