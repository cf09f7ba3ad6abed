"""What a run carries across continue-as-new: ``ContinuedRun``, the input of every run after
the first (docs/architecture.md, "Continue-as-new and the history budget").

A run continues as new at a safe point (after a tool turn, nothing pending, nothing in
flight); the next run of the same workflow id starts from a ``ContinuedRun`` and goes on where
the last one stopped, so its queries, its ``RunResult`` and its limits cover the whole run.
The task text is not carried on its own: it is in the conversation. Plain data only: the
workflow converts its own state to and from these models (workflows/agent/continuation.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from keel.contracts.approvals import ApproverIdentity, ApproverKeys, Decision, DecisionRecord
from keel.contracts.llm import ConversationState, ImagePart, ToolSpec, Usage
from keel.contracts.profile import Limits, Profile
from keel.contracts.resolution import Resolution
from keel.contracts.result import StepRecord
from keel.contracts.routing import RouterState
from keel.contracts.run import Guidance, Principal


class LedgerState(BaseModel):
    """What the run has spent and done in every generation so far."""

    steps: list[StepRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0


class DeskState(BaseModel):
    """The approval desk between requests (nothing is pending at a safe point): the audit
    trail, every decision accepted and request closed (so a repeated decision is still
    recognised), and what the run knows of its approvers."""

    accepted: dict[str, Decision] = Field(default_factory=dict)
    early: dict[str, Decision] = Field(default_factory=dict)
    closed: dict[str, str] = Field(default_factory=dict)
    audit: list[DecisionRecord] = Field(default_factory=list)
    bound: bool | None = None
    serials: dict[str, int] = Field(default_factory=dict)
    refused_edits: dict[int, str] = Field(default_factory=dict)
    identity_required: bool = False
    approver_keys: ApproverKeys | None = None
    identities: dict[str, ApproverIdentity] = Field(default_factory=dict)
    reloaded_kids: list[str] = Field(default_factory=list)
    warned_unsigned: bool = False
    next_serial: int = 0


class GuidanceState(BaseModel):
    """Guide signals not yet used, how many were, and whether the run has escalated."""

    pending: list[Guidance] = Field(default_factory=list)
    used: int = 0
    escalated: bool = False


class TrackerState(BaseModel):
    """The no-progress tracker's counts (workflows/agent/no_progress.py)."""

    call_counts: dict[str, int] = Field(default_factory=dict)
    seen_results: list[str] = Field(default_factory=list)
    idle_steps: int = 0
    reason: str | None = None
    idle: list[tuple[int, str]] = Field(default_factory=list)


class StreamItem(BaseModel):
    """One retained progress event of the workflow stream (its serialized payload)."""

    topic: str
    data: str = Field(description="base64 of the serialized Payload, as the stream keeps it")
    offset: int = 0


class StreamPublisher(BaseModel):
    sequence: int
    last_seen: datetime


class StreamState(BaseModel):
    """The workflow stream's state (``WorkflowStream.get_state()``), its log truncated to the
    last events kept (``STREAM_EVENTS_KEPT`` in workflows/agent/continuation.py)."""

    log: list[StreamItem] = Field(default_factory=list)
    base_offset: int = 0
    publishers: dict[str, StreamPublisher] = Field(default_factory=dict)


class HistoryState(BaseModel):
    """What the history budget has learnt: the largest growth of one step (model call to
    model call), to project whether the next one fits; and the events and bytes of every
    generation before this one (reported, never a limit: each generation has its own)."""

    largest_step_events: int = 0
    largest_step_bytes: int = 0
    earlier_events: int = 0
    earlier_bytes: int = 0


class ContinuedRun(BaseModel):
    """The input of a run that continues an earlier one (``generation`` ≥ 1)."""

    generation: int = Field(ge=1, description="how many times the run has continued as new")
    started_at: datetime = Field(description="when the first run started (the wall clock)")
    principal: Principal
    profile: str = Field(description="the profile name the run was started with")
    resolved: Profile = Field(description="the profile as resolved at the start, never reloaded")
    limits: Limits = Field(description="the effective limits, as raised by any guidance")
    ledger: LedgerState = Field(default_factory=LedgerState)
    desk: DeskState = Field(default_factory=DeskState)
    guidance: GuidanceState = Field(default_factory=GuidanceState)
    tracker: TrackerState = Field(default_factory=TrackerState)
    catalog: list[ToolSpec] = Field(default_factory=list, description="tools offered the model")
    catalog_all: list[ToolSpec] = Field(default_factory=list, description="every listed tool")
    conversation: ConversationState = Field(default_factory=ConversationState)
    resolutions: dict[str, Resolution] = Field(
        default_factory=dict, description="resolve answers not yet used (lost answers)"
    )
    tool_images: dict[str, list[ImagePart]] = Field(default_factory=dict)
    stream: StreamState | None = None
    history: HistoryState = Field(default_factory=HistoryState)
    routing: RouterState | None = Field(
        default=None, description="the router's escalation state ([routing]; None: none)"
    )


def is_continued(raw: Any) -> bool:
    """Whether a workflow input (a ``ContinuedRun`` or its JSON form) continues a run: an
    ``AgentInput`` never has a ``generation``."""
    return isinstance(raw, ContinuedRun) or (isinstance(raw, dict) and "generation" in raw)
