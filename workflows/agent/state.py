"""A run's state, in one place, and the wiring a tool turn works with.

``AgentState`` is everything one run has accumulated (the ``status`` and
``pending_approvals`` queries read it; the ``RunResult`` is built from it). ``RunContext`` is
what a turn needs from the run once the profile is loaded and the tools are listed: every
field is required, so a missing piece of wiring is a type error, not a silent default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import (
        ApprovalSettings,
        DecisionNodeRecord,
        FallbackRecord,
        Guidance,
        ImagePart,
        Limits,
        Principal,
        RouterState,
        RunState,
        RunStatus,
        ServerSettings,
        StepRecord,
        ToolPolicy,
        ToolSpec,
        Usage,
    )
    from workflows.agent.no_progress import ProgressTracker
    from workflows.agent.transcript import Transcript
    from workflows.approvals.desk import ApprovalDesk
    from workflows.failures import FailureClass
    from workflows.report.reporter import Reporter
    from workflows.tools.check import CheckPipeline
    from workflows.tools.lost import LostAnswers


@dataclass
class Ledger:
    """What the run has spent and done so far."""

    steps: list[StepRecord] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0


@dataclass
class AgentState:
    """All of one run's state. Empty until the run starts; queries may read it at any time."""

    phase: RunState = "running"
    profile: str = ""
    model: str = ""
    last_event: str = "starting"
    transcript: Transcript = field(default_factory=Transcript)
    ledger: Ledger = field(default_factory=Ledger)
    desk: ApprovalDesk = field(default_factory=ApprovalDesk)
    # guide signals received and not yet used (kept if they arrive early)
    guidance: list[Guidance] = field(default_factory=list)
    escalated: bool = False
    guidance_used: int = 0
    # images of tool results by tool-call id, from the call's execution until its tool message
    # is built (workflows/agent/turn.py); the provider sends them to models that accept images
    tool_images: dict[str, list[ImagePart]] = field(default_factory=dict)
    # one-attempt writes whose answer was lost, waiting for a human's resolve
    lost: LostAnswers = field(default_factory=LostAnswers)
    # a pipeline's decision nodes (workflows/pipeline/decide.py), in the order decided
    decisions: list[DecisionNodeRecord] = field(default_factory=list)
    # the fallback workflow the run started once it ended (workflows/agent/fallback.py)
    fallback: FallbackRecord | None = None
    # the router's escalation state (workflows/agent/routing.py; None: no [routing])
    routing: RouterState | None = None


def run_status(state: AgentState, continued: int) -> RunStatus:
    """The ``status`` query's answer; ``continued``: times the run has continued as new."""
    return RunStatus(
        state=state.phase,
        profile=state.profile,
        step=state.ledger.model_calls,
        tool_calls=state.ledger.tool_calls,
        usage=state.ledger.usage,
        cost_usd=state.ledger.cost_usd,
        last_event=state.last_event,
        pending_approvals=len(state.desk.pending),
        unresolved_calls=state.lost.unresolved(),
        continued=continued,
        fallback=state.fallback,
    )


@dataclass(frozen=True)
class Stop:
    """A stop condition that tripped: the stop reason and the failure class it implies."""

    reason: str
    failure_class: FailureClass
    message: str


@dataclass
class RunContext:
    """Everything a tool turn needs from the run. ``limits`` may be raised once by a human's
    guidance; everything else is fixed for the run."""

    workflow_id: str
    principal: Principal
    limits: Limits
    servers: dict[str, ServerSettings]
    policies: dict[str, ToolPolicy]
    approvals: ApprovalSettings
    catalog: list[ToolSpec]  # the tools offered to the model
    checks: CheckPipeline
    tracker: ProgressTracker
    state: AgentState
    reporter: Reporter
    on_pending_change: Callable[[], None]

    @property
    def ledger(self) -> Ledger:
        return self.state.ledger

    @property
    def desk(self) -> ApprovalDesk:
        return self.state.desk
