"""What an eval records per run and what its report says (the JSON report's schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from keel.contracts import RunResult

# A run's outcome as the eval saw it: the RunResult's status, or where the eval stopped
# waiting (the run waits for a human the task does not supply), or the eval's own failure.
EvalStatus = Literal[
    "completed",
    "halted",
    "failed",
    "rejected",
    "awaiting_approval",
    "awaiting_guidance",
    "eval_timeout",
    "eval_error",
]


class CheckOutcome(BaseModel):
    name: str = Field(description="the check, e.g. status, answer_contains, state[0]")
    passed: bool
    reason: str = Field(default="", description="why it failed (empty when it passed)")


class EvalRun(BaseModel):
    """One (config, task, trial) run and its judgement."""

    config: str
    task: str
    trial: int
    workflow_id: str
    status: EvalStatus
    failure_class: str | None = None
    final_answer: str | None = None
    tools_called: list[str] = Field(default_factory=list)
    approvals_requested: int = 0
    interventions: int = Field(default=0, description="human actions: decisions, guidance")
    cost_usd: float = 0.0
    latency_seconds: float = 0.0
    error: str | None = None
    checks: list[CheckOutcome] = Field(default_factory=list)
    result: RunResult | None = Field(default=None, description="the run's RunResult, if any")

    passed: bool = False
    failure: str | None = Field(
        default=None,
        description="the class of a failing run (keel.eval.checks.failure_of); None if passed",
    )


class ConfigFigures(BaseModel):
    """The figures of one configuration (definitions: docs/operations.md, "Evals")."""

    config: str
    spec: str
    runs: int
    passed: int
    tasks: int
    trials: int
    success_rate: float | None
    pass_k: float | None = Field(description="fraction of tasks whose every trial passed")
    total_cost_usd: float
    cost_per_success_usd: float | None
    latency_p50_seconds: float | None
    latency_p95_seconds: float | None
    intervention_rate: float | None
    handed_over: int = Field(
        default=0, description="failing runs whose fallback workflow completed (a person has it)"
    )
    unhandled_rate: float | None = Field(
        default=None, description="runs that neither passed nor were handed over / runs"
    )
    failure_classes: dict[str, int]


class EvalReport(BaseModel):
    dataset: str
    description: str = ""
    eval_id: str
    k: int
    seconds: float = Field(description="wall time of the whole eval")
    configs: list[ConfigFigures]
    runs: list[EvalRun]
