"""Model routing: which tier serves the next model step, and why (``[routing]``).

Workflow code (deterministic). ``Router.next`` names the tier of the next step; the loop tells
it how each step went (``answered``, ``turn_done``) so it can escalate to a stronger tier and
step back down, and ask an answer again on a stronger tier (the ``final`` tier, or one rung up
after a low self-reported confidence). The rules are workflows/agent/route_policy.py's; this
module applies them to a run: budgets, step records, progress and log events.

A profile without ``[routing]`` gets ``None`` for every step: ``[model]`` serves it, exactly
as before routing existed (no command changes, so recorded histories replay).

Budgets: every route is projected at the price of the tier that will serve it
(``before_model_call`` with that tier's chain). Routing never halts a run on its own: an
escalated tier over the cost or token budget is skipped for the kind's own tier (and the
escalation ends), and an answer whose re-ask would not fit is kept as the run's answer.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import ChatResponse, EscalationTrigger, Profile, RouterState, StepRecord
    from workflows.agent.model_step import before_model_call
    from workflows.agent.route_policy import (
        Route,
        RoutingPolicy,
        Shift,
        self_reported_confidence,
        tier_name,
    )
    from workflows.agent.state import Ledger, RunContext, Stop
    from workflows.report.events import emit

__all__ = ["Route", "Router"]

# The progress line of each change of tier (``routing.<kind>``).
_MESSAGES = {
    "escalated": "step {step}: escalating from {from_tier} to {to_tier} after {cause}",
    "deescalated": "step {step}: stepping down from {from_tier} to {to_tier} after {cause}",
    "final_answer": "step {step}: {from_tier} answered; asking {to_tier} for the final answer",
}


# How a stop that keeps a stronger tier from serving reads in a step's route or detail.
_WHY_STOP = {
    "cost_budget": "over the cost budget",
    "token_budget": "over the token budget",
    "step_limit": "no step left",
}


class Router:
    """Routes one run's model steps (see the module docstring). Its state lives in the run's
    ``AgentState.routing``, so continue-as-new carries it."""

    def __init__(self, profile: Profile, ctx: RunContext | None = None) -> None:
        self.profile = profile
        self.ctx = ctx
        self.policy: RoutingPolicy | None = None
        if profile.routing is not None:  # without a run (ctx): fresh state, no budget checks
            state = RouterState() if ctx is None else ctx.state.routing or RouterState()
            if ctx is not None:
                ctx.state.routing = state
            self.policy = RoutingPolicy(profile.routing, state)
        self._served: Route | None = None  # the route of the step in flight
        self._dropped = False  # it is the kind's tier: the escalated one was over the budget
        self._reask: Route | None = None  # the next step asks the last answer again
        self._confidence: float | None = None  # what the model reported at the last step

    def next(self, step: int) -> Route | None:
        """The route of model step ``step`` (1-based); None without ``[routing]``."""
        if self.policy is None:
            return None
        self._dropped = False
        if self._reask is not None:  # its budget was checked when it was decided
            route = self._reask
        else:
            route = self.policy.route(step)
            kind = self.policy.kind(step)
            stop = self._stop(route.tier) if route.tier != kind.tier else None
            if stop is not None and self._stop(kind.tier) is None:
                over = (
                    f"escalation to {route.tier} skipped: {_WHY_STOP.get(stop.reason, stop.reason)}"
                )
                route, self._dropped = Route(kind.tier, f"{kind.why} ({over})"), True
        self._served = route
        return route

    def summary(self) -> Route | None:
        """The route of a step that summarizes older turns (the context budget's): the
        ``summary`` tier (unset: ``[model]``); None without ``[routing]``. Its ``why`` starts
        with ``summary``, the reason the report counts it under."""
        if self.policy is None:
            return None
        return Route(self.policy.settings.summary, "summary of older turns", "summary")

    def answered(self, response: ChatResponse) -> bool:
        """The model answered step ``ledger.model_calls``. True: the loop asks the same
        conversation again on a stronger tier (the answer is not kept, nor its tool calls
        run: it has none) — the final tier, or one rung up after a low confidence."""
        if self.policy is None or self._served is None or self.ctx is None:
            return False
        served, step = self._served, self.ctx.ledger.model_calls
        self.policy.served(dropped=self._dropped)
        self._reask = None
        self._confidence = self_reported_confidence(response.content)
        if response.tool_calls:
            return False
        route = self.policy.reask(served, step, self._confidence)
        if route is None:
            return False
        stop = self._stop(route.tier)
        if stop is not None:
            why = _WHY_STOP.get(stop.reason, stop.reason)
            self._annotate(step, f"kept: asking {route.tier} again: {why}")
            return False
        shift = self.policy.reasked(served, step, route)
        self._annotate(step, f"asked again on {route.tier} ({route.purpose})")
        self._report(shift)
        self._reask = route
        return True

    def turn_done(self, ledger: Ledger, step: int) -> None:
        """The tool turn of ``step`` ran (its refusals and tool errors may escalate)."""
        if self.policy is None or self._served is None:
            return
        shift = self.policy.turn_done(self._served, step, triggers(ledger, step),
                                      self._confidence)  # fmt: skip
        if shift is not None:
            self._report(shift)

    # ------------------------------------------------------------------ helpers

    def _stop(self, tier: str | None) -> Stop | None:
        """What would stop the next call if ``tier`` served it (None: it passes every check
        before a model call, projected at that tier's price)."""
        ctx = self.ctx
        if ctx is None:
            return None
        serving = self.profile.tier_model(tier)
        _, stop = before_model_call(self.profile, ctx.limits, ctx.ledger,
                                    ctx.state.transcript.state, ctx.catalog, ctx.tracker,
                                    serving)  # fmt: skip
        return stop

    def _annotate(self, step: int, note: str) -> None:
        """Add ``note`` to the detail of the model record of ``step`` (an answer not kept)."""
        assert self.ctx is not None
        steps = self.ctx.ledger.steps
        for index in range(len(steps) - 1, -1, -1):
            record = steps[index]
            if record.step == step and record.kind == "model":
                steps[index] = record.model_copy(update={"detail": f"{record.detail}; {note}"})
                return

    def _report(self, shift: Shift) -> None:
        """The ``routing.<kind>`` progress and log events of a change of tier."""
        assert self.ctx is not None
        fields: dict[str, Any] = {
            "from_tier": tier_name(shift.from_tier),
            "to_tier": tier_name(shift.to_tier),
            "cause": shift.cause,
        }
        message = _MESSAGES[shift.kind].format(step=shift.step, **fields)
        self.ctx.reporter.progress(f"routing.{shift.kind}", message, step=shift.step, **fields)
        emit(f"routing.{shift.kind}", step=shift.step, **fields, route=shift.why)


def triggers(ledger: Ledger, step: int) -> list[EscalationTrigger]:
    """What in the tool turn of ``step`` may escalate: a call refused by validation (outcome
    ``invalid``: schema, authorization, semantic checks, an approver's edit that failed them),
    a tool error (the server answered with an error). Limits and human rejections are not the
    model's doing and do not escalate."""
    records = _turn_records(ledger.steps, step)
    found: list[EscalationTrigger] = []
    if any(r.outcome == "invalid" for r in records):
        found.append("validation_refusal")
    if any(r.outcome == "tool_error" for r in records):
        found.append("tool_error")
    return found


def _turn_records(steps: list[StepRecord], step: int) -> list[StepRecord]:
    """The tool records of ``step`` (they are the newest records: read from the end)."""
    found = []
    for record in reversed(steps):
        if record.step < step:
            break
        if record.step == step and record.kind == "tool":
            found.append(record)
    return found
