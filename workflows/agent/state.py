"""Run state shared by the workflow's tool-turn code: the ledger, stop conditions, context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import (
        ApprovalSettings,
        Limits,
        Principal,
        ServerSettings,
        StepRecord,
        ToolPolicy,
        ToolSpec,
        Usage,
    )
    from workflows.agent.no_progress import ProgressTracker
    from workflows.approvals.policy import ApprovalDesk
    from workflows.failures import FailureClass
    from workflows.report.reporter import Reporter
    from workflows.tools.validation import Validator


@dataclass
class Ledger:
    """What the run has spent and done so far (lives in workflow state)."""

    steps: list[StepRecord] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0


@dataclass(frozen=True)
class Stop:
    """A stop condition that tripped: the stop reason and the failure class it implies."""

    reason: str
    failure_class: FailureClass
    message: str


@dataclass
class TurnContext:
    """Everything a tool turn needs from the run."""

    workflow_id: str
    principal: Principal
    limits: Limits
    servers: dict[str, ServerSettings]
    policies: dict[str, ToolPolicy]
    catalog_all: list[ToolSpec]
    validator: Validator
    tracker: ProgressTracker
    ledger: Ledger
    desk: ApprovalDesk = field(default_factory=ApprovalDesk)
    approvals: ApprovalSettings = field(default_factory=ApprovalSettings)
    on_pending_change: Callable[[], None] = lambda: None
    reporter: Reporter = field(default_factory=Reporter)
