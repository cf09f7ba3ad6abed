"""The operations report as data: what ``keel report --json`` prints, and what the text tables
and the HTML page render. Every figure is defined in docs/operations.md ("Operations report").
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from keel.contracts import RunResult
from keel.report.caching import CacheRow

RunEnd = Literal[
    "completed", "halted", "rejected", "failed", "terminated", "timed_out", "cancelled"
]


class RunRecord(BaseModel):
    """One finished run as the report sees it: visibility facts plus its result, if it has one.

    ``result`` is None for runs that ended as a failed (or terminated, timed-out, cancelled)
    workflow instead of returning a ``RunResult``; their ``failure_class`` comes from Temporal.
    """

    workflow_id: str
    run_id: str
    profile: str | None = None
    end: RunEnd
    failure_class: str | None = None
    start_time: datetime | None = None
    close_time: datetime | None = None
    result: RunResult | None = None

    @classmethod
    def of_result(
        cls,
        workflow_id: str,
        result: RunResult,
        *,
        run_id: str = "",
        start_time: datetime | None = None,
        close_time: datetime | None = None,
    ) -> RunRecord:
        """A run that returned a ``RunResult``: its end, class and profile are the result's."""
        return cls(
            workflow_id=workflow_id,
            run_id=run_id,
            profile=result.profile,
            end=result.status,
            failure_class=result.failure_class,
            start_time=start_time,
            close_time=close_time,
            result=result,
        )


class Distribution(BaseModel):
    """Summary of a sample; percentiles by linear interpolation between closest ranks."""

    count: int
    min: float
    max: float
    mean: float
    p50: float
    p95: float
    p99: float


LatencyScope = Literal["kind", "model", "tool"]
RetryScope = Literal["all", "model", "tool"]


class LatencyRow(BaseModel):
    """Latency (ms) of the steps of one kind, one model or one tool."""

    scope: LatencyScope
    name: str
    latency_ms: Distribution


class TokenRow(BaseModel):
    """Token usage of model steps: all of them (``model="*"``) or one model's."""

    model: str
    steps: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_tokens: int
    per_step: Distribution = Field(description="input + output tokens of one model step")


class ToolRow(BaseModel):
    """Outcomes of one tool's calls; success rate = ok / (ok + tool_error + failed)."""

    tool: str
    server: str | None = None
    calls: int = Field(description="every step record of the tool, whatever its outcome")
    outcomes: dict[str, int]
    executed: int = Field(description="calls that reached the server: ok + tool_error + failed")
    succeeded: int
    success_rate: float | None = Field(description="succeeded / executed; None if none ran")


class RetryRow(BaseModel):
    """Retries of executed steps: all steps (``scope="all"``), model steps or tool steps."""

    scope: RetryScope
    steps: int
    retried_steps: int = Field(description="steps whose call took more than one attempt")
    retry_rate: float | None = Field(description="retried_steps / steps")
    extra_attempts: int = Field(description="sum of (attempts - 1)")
    extra_attempts_per_step: float | None = Field(description="extra_attempts / steps")


class CostFigures(BaseModel):
    """Spend of every run in the window, per successful completion (not per call)."""

    total_usd: float
    runs: int
    completed: int
    per_completion_usd: float | None = Field(
        description="total_usd / completed: failed and halted runs' spend included"
    )


class HistogramBin(BaseModel):
    value: int
    runs: int


class StepCounts(BaseModel):
    """Model calls per run, over the runs that returned a RunResult."""

    runs: int
    distribution: Distribution | None
    histogram: list[HistogramBin]


class Interventions(BaseModel):
    """How often a human had to act, and how long a tool call waited for one."""

    runs: int
    intervened_runs: int = Field(
        description="runs with an accepted human decision (approve/reject/edit) or guidance"
    )
    rate: float | None = Field(description="intervened_runs / runs")
    guided_runs: int
    decisions: dict[str, int] = Field(description="decision records by kind, timeouts included")
    human_decisions: int
    time_to_decision_s: Distribution | None = Field(
        description="at - requested_at of human decisions (approve/reject/edit) only"
    )


class TierRow(BaseModel):
    """The model steps one routing tier served (``[routing]``; ``[model]`` for a routed step
    of no tier), and why they were routed to it (``keel.contracts.route_reason``)."""

    tier: str
    runs: int = Field(description="runs with at least one step on the tier")
    steps: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_tokens: int
    cost_usd: float
    reasons: dict[str, int] = Field(
        description="steps by why they were routed here: first step, tool step, escalated, ..."
    )


class FailureRow(BaseModel):
    failure_class: str
    runs: int


class Report(BaseModel):
    """Every figure of ``keel report`` over the finished runs of one window."""

    since: datetime
    until: datetime
    profile: str | None = None
    query: str = Field(description="the visibility filter the runs were listed with")
    runs: int
    truncated: bool = Field(default=False, description="--limit was reached; more runs exist")
    unreadable: int = Field(default=0, description="runs whose result could not be decoded")
    outcomes: dict[str, int]
    cost: CostFigures
    latency: list[LatencyRow]
    tokens: list[TokenRow]
    tools: list[ToolRow]
    retries: list[RetryRow]
    steps_per_run: StepCounts
    interventions: Interventions
    failures: list[FailureRow]
    tiers: list[TierRow] = Field(
        default_factory=list, description="routed model steps per tier (empty: none routed)"
    )
    fallbacks: dict[str, int] = Field(
        default_factory=dict,
        description="runs that fell back to a fallback workflow, by its outcome"
        " (completed / failed / running)",
    )
    cache: list[CacheRow] = Field(
        default_factory=list, description="prompt-cache hit rate and savings (keel/report/caching)"
    )
