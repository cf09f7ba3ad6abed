"""A tripped limit: halt, or — once per run, if the profile says ``escalate`` — wait (bounded)
for a human's ``guide`` signal and go on with its instruction and any limits it extends.

Workflow code, called by ``AgentWorkflow._loop``; the guidance itself arrives by the ``guide``
signal into ``AgentState.guidance``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import (
        ChatMessage,
        Guidance,
        LimitOverrides,
        Profile,
        RunState,
        extend_limits,
    )
    from workflows.agent.state import RunContext, Stop


async def guided_past(
    profile: Profile, ctx: RunContext, stop: Stop, set_state: Callable[[RunState], None]
) -> bool:
    """Whether the run goes on past ``stop``: True once a human's guidance arrived in time."""
    state, reporter = ctx.state, ctx.reporter
    escalates = profile.escalation.on_limit == "escalate" and not state.escalated
    reporter.stop(state.ledger.model_calls, stop.reason, stop.failure_class, stop.message,
                  "escalate" if escalates else "halt")  # fmt: skip
    if not escalates:
        return False
    guidance = await _wait_for_guidance(profile, ctx, stop, set_state)
    if guidance is None:
        return False
    reporter.guided(state.ledger.model_calls, guidance.by, guidance.instruction,
                    guidance.extend)  # fmt: skip
    ctx.limits = extend_limits(ctx.limits, guidance.extend or LimitOverrides())
    ctx.tracker.max_repeated_calls = ctx.limits.max_repeated_calls
    ctx.tracker.max_idle_steps = ctx.limits.max_idle_steps
    ctx.tracker.reset()
    state.transcript.append(
        ChatMessage(role="user", content=f"Guidance from a human: {guidance.instruction}")
    )
    return True


async def _wait_for_guidance(
    profile: Profile, ctx: RunContext, stop: Stop, set_state: Callable[[RunState], None]
) -> Guidance | None:
    """Wait (bounded) for a human's ``guide`` signal; None when none came in time."""
    state = ctx.state
    state.escalated = True
    set_state("awaiting_guidance")
    state.last_event = f"awaiting guidance: {stop.message}"
    ctx.reporter.guidance_requested(
        state.ledger.model_calls, stop.message, profile.escalation.timeout_seconds
    )
    try:
        await workflow.wait_condition(
            lambda: bool(state.guidance),
            timeout=timedelta(seconds=profile.escalation.timeout_seconds),
        )
    except TimeoutError:
        return None
    set_state("running")
    state.guidance_used += 1
    return state.guidance.pop(0)
