"""What a run reports: per-step records, the ``status`` query's answer, the ``RunResult``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from keel.contracts.approvals import DecisionRecord
from keel.contracts.content import ContentRef
from keel.contracts.decisions import DecisionNodeRecord
from keel.contracts.fallback import FallbackRecord
from keel.contracts.llm import Usage
from keel.contracts.resolution import UnresolvedCall
from keel.contracts.run import ClosedState, RunOutcome, RunState, StepKind, StepOutcome


class StepRecord(BaseModel):
    """What happened at one model call or one tool call."""

    step: int = Field(description="model-call index this record belongs to (1-based)")
    kind: StepKind
    name: str = Field(description="model name, or tool name")
    server: str | None = None
    tool_call_id: str | None = None
    model_tool_call_id: str | None = Field(
        default=None,
        description="the id the model gave this call when Keel renamed it (missing or repeated"
        " in its turn); tool_call_id is the id the run used",
    )
    started_at: datetime
    latency_ms: float = 0.0
    usage: Usage | None = None
    attempts: int = 1
    outcome: StepOutcome = "ok"
    detail: str = ""
    idempotency_key: str | None = None
    cost_usd: float | None = None
    cache_saved_usd: float | None = Field(
        default=None,
        description="what the prompt cache saved on a model step (keel.contracts.llm"
        " cache_savings); None when the call read and wrote nothing in a cache",
    )
    validation: str | None = Field(
        default=None, description="'passed', or '<layer>: <message>' for a refused tool call"
    )
    content_ref: ContentRef | None = Field(
        default=None,
        description="the step's full content in the content store (a tool result cut for the"
        " model, an oversized answer): `keel result --content <digest>` prints it",
    )
    tier: str | None = Field(default=None, description="the routing tier that served a model step")
    route: str | None = Field(default=None, description="why that tier served it")
    purpose: str | None = Field(
        default=None, description="a model step that is not a turn: 'summary', 'final answer'"
    )
    context: str | None = Field(
        default=None, description="what the context budget trimmed or summarized for the step"
    )


class RunStatus(BaseModel):
    """Answer of the ``status`` query.

    ``state`` is the run's own (``KeelState``); ``keel status`` puts ``terminated``,
    ``timed_out`` or ``cancelled`` there when Temporal closed the run without a result — the
    run itself can no longer say so (keel/client.py ``run_status``).
    """

    state: RunState | ClosedState
    profile: str
    step: int
    tool_calls: int
    usage: Usage
    last_event: str
    cost_usd: float = 0.0
    pending_approvals: int = 0
    unresolved_calls: list[UnresolvedCall] = Field(
        default_factory=list, description="writes whose answer was lost, waiting for resolve"
    )
    continued: int = Field(default=0, description="times the run has continued as new so far")
    execution: str | None = Field(
        default=None,
        description="Temporal's execution status when `keel status` read it (Running,"
        " Completed, Terminated, TimedOut, ...); None from the query alone",
    )
    fallback: FallbackRecord | None = Field(
        default=None, description="the fallback workflow the run started, once it started one"
    )


class RunResult(BaseModel):
    """Result of ``AgentWorkflow``: always typed, whether the run completed or not."""

    status: RunOutcome
    final_answer: str | None = None
    stop_reason: str | None = None
    failure_class: str | None = None
    error: str | None = None
    profile: str
    model: str
    steps: list[StepRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    tool_calls: int = 0
    model_calls: int = 0
    cost_usd: float = 0.0
    approvals: list[DecisionRecord] = Field(default_factory=list)
    guidance: int = Field(default=0, description="guide signals a human sent and the run used")
    continued: int = Field(
        default=0, description="times the run continued as new (its totals cover every run)"
    )
    decisions: list[DecisionNodeRecord] = Field(
        default_factory=list, description="a pipeline's decision nodes, in the order decided"
    )
    fallback: FallbackRecord | None = Field(
        default=None, description="the fallback workflow that took the run over, if any"
    )
