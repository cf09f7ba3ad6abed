"""Model routing (``[routing]``): which tier serves which kind of step, and when a run moves
to a stronger tier and back (workflows/agent/routing.py; docs/operations.md, "Model tiers and
routing").

The settings name tiers of the profile's ``[tiers]``; ``routing_problems`` says, in one line
each, which names do not exist. ``RouterState`` is the router's memory that must outlive one
run of a workflow id (continue-as-new carries it). ``route_reason`` turns a step record's
``route`` (a sentence naming the cause and the step) into the short reason the report counts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from keel.contracts._base import Strict
from keel.contracts.errors import closest

EscalationTrigger = Literal["validation_refusal", "tool_error", "low_confidence"]

# The reasons a route names, in the order the report lists them. A step's ``route`` starts
# with one of them ("escalated after a tool error at step 3"): see ``route_reason``.
ROUTE_REASONS = (
    "first step",
    "tool step",
    "escalated",
    "de-escalated",
    "final answer",
    "summary",
)


def _all_triggers() -> list[EscalationTrigger]:
    return ["validation_refusal", "tool_error", "low_confidence"]


class RoutingSettings(Strict):
    """Tier names are the profile's ``[tiers.<name>]``; unset kinds are served by ``[model]``.

    ``final``: a step that answers without tool calls on a weaker tier is asked again on this
    tier, whose answer is the run's (unless it calls tools, and the loop goes on). ``ladder``:
    the tiers escalation climbs, weakest first; a step served by a tier not on it does not
    escalate. A model reports its confidence as a line ``confidence: 0.42`` (or ``42%``) of
    its text; below ``min_confidence`` it escalates like a refusal does.
    """

    first: str | None = Field(default=None, description="tier of the run's first (planning) step")
    tools: str | None = Field(default=None, description="tier of a step that follows a tool turn")
    final: str | None = Field(
        default=None, description="tier that writes the final answer the caller sees"
    )
    summary: str | None = Field(
        default=None, description="tier that summarizes older turns (context budgets)"
    )
    ladder: list[str] = Field(
        default_factory=list, description="tiers from weakest to strongest, for escalation"
    )
    escalate_on: list[EscalationTrigger] = Field(default_factory=_all_triggers)
    min_confidence: float = Field(
        default=0.5, ge=0, le=1, description="a self-reported confidence below it escalates"
    )
    deescalate_after: int = Field(
        default=1, ge=1, le=100, description="clean steps on an escalated tier before stepping down"
    )

    @field_validator("ladder")
    @classmethod
    def _ladder_once_each(cls, ladder: list[str]) -> list[str]:
        twice = sorted({tier for tier in ladder if ladder.count(tier) > 1})
        if twice:
            raise ValueError(f"a tier is on the ladder once: {', '.join(twice)} more than once")
        return ladder

    @field_validator("escalate_on")
    @classmethod
    def _triggers_once_each(cls, triggers: list[EscalationTrigger]) -> list[EscalationTrigger]:
        return list(dict.fromkeys(triggers))

    def named(self) -> list[tuple[str, str]]:
        """Every tier the settings name, as (setting, tier), in the order they read."""
        kinds = [(key, getattr(self, key)) for key in ("first", "tools", "final", "summary")]
        rungs = [(f"ladder[{i}]", tier) for i, tier in enumerate(self.ladder)]
        return [(key, tier) for key, tier in [*kinds, *rungs] if tier is not None]


def routing_problems(routing: RoutingSettings | None, tiers: set[str]) -> list[str]:
    """Names in ``[routing]`` that are no tier of the profile, as readable lines."""
    if routing is None:
        return []
    problems = []
    for key, tier in routing.named():
        if tier not in tiers:
            near = closest(tier, tiers, limit=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            known = ", ".join(sorted(tiers)) or "none"
            problems.append(
                f"routing.{key} names tier {tier!r}, which [tiers] does not define"
                f" (defined: {known}{hint})"
            )
    return problems


def route_reason(route: str | None) -> str:
    """The reason a step's ``route`` names (one of ``ROUTE_REASONS``), for counting: the
    sentence itself names the step and the cause. ``[model]`` steps of an unrouted run have
    none (``"unrouted"``); a sentence that names no known reason is counted as written."""
    if route is None:
        return "unrouted"
    for reason in sorted(ROUTE_REASONS, key=len, reverse=True):
        if route.startswith(reason):
            return reason
    return route


class RouterState(BaseModel):
    """What the router remembers between steps (workflows/agent/routing.py), carried across
    continue-as-new (``ContinuedRun.routing``).

    ``escalated`` is the tier escalation put in force (None: each kind's tier serves),
    ``reason`` why (the route of every step it serves), ``clean_steps`` the clean steps it has
    served since, and ``note`` the route of the very next step when it differs (the first
    step after a de-escalation)."""

    escalated: str | None = None
    reason: str | None = None
    clean_steps: int = 0
    note: str | None = None
