"""The routing policy: pure decisions over ``[routing]`` and the router's state.

Deterministic and free of Temporal, so every rule is unit-tested on its own
(tests/unit/workflows/agent/test_route_policy.py); workflows/agent/routing.py applies it to a
run (budgets, step records, progress). The rules (docs/operations.md, "Model tiers and
routing"):

* step 1 is served by ``first``, a step after a tool turn by ``tools`` (unset: ``[model]``);
* a step whose turn had a trigger of ``escalate_on`` (a validation refusal, a tool error, a
  self-reported confidence below ``min_confidence``) puts the tier one rung up the ``ladder``
  from the one that served it in force; a tier not on the ladder does not escalate;
* ``deescalate_after`` clean steps on the escalated tier step one rung back down, until the
  kind's own tier serves again (at once when that tier is not on the ladder);
* an answer (no tool calls) with a low confidence is asked again one rung up; else an answer
  from a tier weaker than ``final`` is asked again on ``final`` — whose answer is the run's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from keel.contracts import EscalationTrigger, RouterState, RoutingSettings

# A line of the model's text such as ``confidence: 0.42``, ``Confidence = 42%`` or
# ``**Confidence:** 0.9`` (markdown emphasis and list marks around it are allowed).
_CONFIDENCE = re.compile(
    r"^[\s*_>#-]*confidence[\s*_]*[:=][\s*_]*(\d+(?:\.\d+)?|\.\d+)\s*(%?)[\s*_.]*$",
    re.IGNORECASE | re.MULTILINE,
)
TRIGGER_ORDER: tuple[EscalationTrigger, ...] = (
    "validation_refusal",
    "tool_error",
    "low_confidence",
)
FINAL_ANSWER = "final answer"
ESCALATED_ANSWER = "escalated answer"


def self_reported_confidence(text: str | None) -> float | None:
    """The confidence the model reported in ``text`` (its last ``confidence:`` line), 0..1;
    None when it reported none, or a number outside 0..1 (0..100 with ``%``)."""
    if not text or "confidence" not in text.lower():
        return None
    matches = _CONFIDENCE.findall(text)
    if not matches:
        return None
    number, percent = matches[-1]
    value = float(number) / (100 if percent else 1)
    return value if 0 <= value <= 1 else None


def tier_name(tier: str | None) -> str:
    """How a tier reads in a sentence: its name, or ``[model]``."""
    return tier if tier is not None else "[model]"


@dataclass(frozen=True)
class Route:
    """The tier serving a step (``None``: the profile's ``[model]``), why, and the purpose of
    a step that is not a turn (a re-asked answer)."""

    tier: str | None
    why: str
    purpose: str | None = None


@dataclass(frozen=True)
class Shift:
    """A change of tier: ``escalated`` (or a re-ask one rung up), ``deescalated``, or
    ``final_answer`` (an answer asked again on the final tier) after ``step``."""

    kind: Literal["escalated", "deescalated", "final_answer"]
    step: int
    from_tier: str | None
    to_tier: str | None
    cause: str
    why: str


class RoutingPolicy:
    """``[routing]`` over a run's ``RouterState`` (mutated in place: the run carries it)."""

    def __init__(self, settings: RoutingSettings, state: RouterState) -> None:
        self.settings = settings
        self.state = state

    # ------------------------------------------------------------------ the ladder

    def rung(self, tier: str | None) -> int | None:
        """The tier's place on the ladder (0: weakest), None when it is not on it."""
        ladder = self.settings.ladder
        return ladder.index(tier) if tier is not None and tier in ladder else None

    def above(self, tier: str | None) -> str | None:
        """The tier one rung up from ``tier``; None at the top or off the ladder."""
        rung = self.rung(tier)
        if rung is None or rung + 1 >= len(self.settings.ladder):
            return None
        return self.settings.ladder[rung + 1]

    def at_least(self, tier: str | None, other: str | None) -> bool:
        """Whether ``tier`` is as strong as ``other``: the same, or as high on the ladder."""
        if tier == other:
            return True
        mine, theirs = self.rung(tier), self.rung(other)
        return mine is not None and theirs is not None and mine >= theirs

    # ------------------------------------------------------------------ routes

    def kind(self, step: int) -> Route:
        """The route of the step's kind: the first step, or a step after a tool turn."""
        if step <= 1:
            return Route(self.settings.first, "first step")
        return Route(self.settings.tools, "tool step")

    def route(self, step: int) -> Route:
        """The route of model step ``step`` (1-based): the escalated tier while one is in
        force and stronger than the kind's own; a one-off note (a de-escalation) says why."""
        kind, state = self.kind(step), self.state
        escalated = state.escalated
        if escalated is None or self.at_least(kind.tier, escalated):
            return Route(kind.tier, state.note) if state.note else kind
        return Route(escalated, state.note or state.reason or "escalated")

    def served(self, *, dropped: bool = False) -> None:
        """A step was served: its one-off note is spent. ``dropped``: the escalated tier was
        over the budget and the kind's tier served instead; the escalation ends (a budget
        only shrinks)."""
        self.state.note = None
        if dropped:
            self.state.escalated, self.state.reason, self.state.clean_steps = None, None, 0

    # ------------------------------------------------------------------ after a step

    def reask(self, served: Route, step: int, confidence: float | None) -> Route | None:
        """The route an answer (no tool calls) of ``step`` is asked again on, if any: one
        rung up when its confidence is low, else the final tier when a weaker one wrote it."""
        settings = self.settings
        if self.low_confidence(confidence):
            up = self.above(served.tier)
            if up is not None:
                why = f"escalated after a low confidence ({confidence:.2f}) at step {step}"
                return Route(up, why, ESCALATED_ANSWER)
        final = settings.final
        if final is not None and not self.at_least(served.tier, final):
            why = f"final answer after {tier_name(served.tier)} answered at step {step}"
            return Route(final, why, FINAL_ANSWER)
        return None

    def reasked(self, served: Route, step: int, route: Route) -> Shift:
        """Commit the re-ask ``route`` of ``step``'s answer; a low-confidence one escalates
        (the stronger tier stays in force for the steps after it, as after a refusal)."""
        if route.purpose == ESCALATED_ANSWER:
            state = self.state
            state.escalated, state.reason, state.clean_steps = route.tier, route.why, 0
            cause = f"a low confidence in its answer (below {self.settings.min_confidence:g})"
            return Shift("escalated", step, served.tier, route.tier, cause, route.why)
        return Shift("final_answer", step, served.tier, route.tier, "an answer", route.why)

    def turn_done(
        self, served: Route, step: int, triggers: list[EscalationTrigger],
        confidence: float | None = None,
    ) -> Shift | None:  # fmt: skip
        """The tool turn of ``step`` ran with ``triggers`` (``confidence``: what the model
        reported at the step): escalate, count a clean step, or step down after enough of
        them. Returns the change of tier, if any."""
        state = self.state
        if self.low_confidence(confidence):
            triggers = [*triggers, "low_confidence"]
        fired = [t for t in TRIGGER_ORDER if t in triggers and t in self.settings.escalate_on]
        if fired:
            state.clean_steps = 0
            up = self.above(served.tier)
            if up is None:
                return None
            texts = {**_TRIGGER_TEXT, "low_confidence": f"a low confidence ({confidence or 0:.2f})"}
            cause = " and ".join(texts[t] for t in fired)
            why = f"escalated after {cause} at step {step}"
            state.escalated, state.reason, state.note = up, why, None
            return Shift("escalated", step, served.tier, up, cause, why)
        if state.escalated is None or served.tier != state.escalated:
            return None
        state.clean_steps += 1
        if state.clean_steps < self.settings.deescalate_after:
            return None
        return self._step_down(step)

    def low_confidence(self, confidence: float | None) -> bool:
        """Whether ``confidence`` is a trigger: reported, below the floor, and escalated on."""
        settings = self.settings
        return (
            confidence is not None
            and confidence < settings.min_confidence
            and "low_confidence" in settings.escalate_on
        )

    def _step_down(self, step: int) -> Shift:
        """One rung down from the escalated tier, toward the tool steps' own tier."""
        state, ladder = self.state, self.settings.ladder
        old = state.escalated
        rung, home = self.rung(old), self.rung(self.settings.tools)
        lower = ladder[rung - 1] if rung is not None and rung > 0 else None
        count = state.clean_steps
        cause = f"{count} clean step{'' if count == 1 else 's'}"
        if lower is None or home is None or home >= ladder.index(lower):
            state.escalated, state.reason = None, None
            to = self.settings.tools
        else:
            state.escalated = to = lower
        state.clean_steps = 0
        state.note = f"de-escalated from {old} after {cause} at step {step}"
        return Shift("deescalated", step, old, to, cause, state.note)


_TRIGGER_TEXT: dict[EscalationTrigger, str] = {
    "validation_refusal": "a validation refusal",
    "tool_error": "a tool error",
    "low_confidence": "a low confidence",
}
