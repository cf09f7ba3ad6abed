"""Decision nodes of hybrid pipelines: their settings (``[decisions.<node>]``), the model
tiers they escalate to (``[tiers.<name>]``), the record of each decision, and the typed answer
tool the model fills.

A decision node asks a model for a typed answer (a pydantic model, sent as the JSON Schema of
one tool, ``answer``) with a confidence. An invalid answer is retried; a confidence below the
threshold escalates along ``escalate``: a stronger tier, then a human through the run's
approval desk (workflows/pipeline/decide.py).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from keel.contracts._base import Strict

ANSWER_TOOL = "answer"
"""The one tool a decision node offers the model: its parameters are the answer's schema."""
DECISION_SERVER = "keel.decision"
"""The ``server`` of an approval request that asks a human to settle a decision (no MCP server
is called: approving accepts the proposed answer, editing replaces it, rejecting declines)."""
HUMAN = "human"
"""The escalation step that hands the decision to a human."""

CONFIDENCE_SCHEMA: dict[str, Any] = {
    "type": "number",
    "minimum": 0.0,
    "maximum": 1.0,
    "description": "how sure you are of this answer, from 0 (a guess) to 1 (certain)",
}


class DecisionSettings(Strict):
    """A profile's settings of one decision node (``[decisions.<node>]``); the pipeline's own
    values apply where the profile says nothing."""

    threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="below this confidence the node escalates"
    )
    max_invalid: int | None = Field(
        default=None, ge=0, le=5, description="invalid answers retried per model before escalating"
    )
    escalate: list[str] | None = Field(
        default=None,
        description="in order: tier names ([tiers.<name>]) and/or 'human'; [] never escalates",
    )

    @field_validator("escalate")
    @classmethod
    def _human_last(cls, steps: list[str] | None) -> list[str] | None:
        if steps and HUMAN in steps[:-1]:
            raise ValueError("'human' can only be the last escalation step")
        return steps


def escalation_problems(decisions: dict[str, DecisionSettings], tiers: set[str]) -> list[str]:
    """Escalation steps that name no tier of the profile, as readable lines."""
    problems = []
    for node, settings in sorted(decisions.items()):
        for step in settings.escalate or []:
            if step != HUMAN and step not in tiers:
                known = ", ".join(sorted(tiers)) or "none"
                problems.append(
                    f"decisions.{node}.escalate names tier {step!r}, which [tiers] does not"
                    f" define (defined: {known}; or 'human')"
                )
    return problems


def answer_parameters(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``answer`` tool's parameters: the answer's JSON Schema plus a required
    ``confidence``."""
    parameters = copy.deepcopy(schema)
    parameters.setdefault("type", "object")
    parameters.setdefault("properties", {})["confidence"] = CONFIDENCE_SCHEMA
    required = list(parameters.get("required", []))
    parameters["required"] = [*required, "confidence"] if "confidence" not in required else required
    parameters.pop("title", None)
    return parameters


DecidedBy = Literal["model", "human", "none"]


class DecisionAttempt(BaseModel):
    """One model's go at a decision: its answer (when valid), confidence, or what was wrong."""

    model: str
    step: int = Field(description="the model call (run step) that answered")
    valid: bool
    confidence: float | None = None
    problem: str | None = Field(default=None, description="why the answer was refused")


class DecisionNodeRecord(BaseModel):
    """What one decision node decided, who decided it, and how it got there."""

    node: str
    answer: dict[str, Any] | None = Field(
        default=None, description="the accepted answer (without confidence); None if declined"
    )
    confidence: float | None = Field(
        default=None, description="the confidence of the accepted model answer"
    )
    decided_by: DecidedBy
    model: str | None = Field(default=None, description="the model whose answer was accepted")
    escalations: list[str] = Field(
        default_factory=list, description="the escalation steps taken, in order"
    )
    attempts: list[DecisionAttempt] = Field(default_factory=list)
    approval_id: str | None = Field(
        default=None, description="the approval request a human settled it through"
    )
    outcome: str = Field(default="", description="accepted / edited by … / rejected by … / …")
    at: datetime | None = None
