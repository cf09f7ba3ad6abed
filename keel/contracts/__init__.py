"""Keel's boundary types: everything that crosses a process or history boundary.

Workflow input and result, activity requests and responses, the resolved profile, approvals,
progress events, and (``keel.contracts.names``) every public name. Split by concern:

- :mod:`keel.contracts.profile` — the agent profile and its settings;
- :mod:`keel.contracts.run` — a run's input (``AgentInput``, ``Principal``, limit overrides);
- :mod:`keel.contracts.llm` — the model activity's messages, tool specs, usage, cost;
- :mod:`keel.contracts.approvals` — approval requests, decisions, the audit trail;
- :mod:`keel.contracts.decisions` — pipelines' decision nodes, their tiers and records;
- :mod:`keel.contracts.fallback` — a profile's ``[fallback]`` and the ``FallbackRecord``;
- :mod:`keel.contracts.fallback_run` — a fallback workflow's input and result;
- :mod:`keel.contracts.history` — the profile's history budget (``[history]``);
- :mod:`keel.contracts.routing` — model routing between tiers (``[routing]``);
- :mod:`keel.contracts.context_budget` / :mod:`keel.contracts.context_view` — the per-step
  input-token budget (``[context]``) and the trimmed view the model activity sends;
- :mod:`keel.contracts.spend` — budgets across runs (``[spend]``) and a call's spend tag;
- :mod:`keel.contracts.continued` — what a run carries across continue-as-new;
- :mod:`keel.contracts.result` — step records, the ``status`` answer, ``RunResult``;
- :mod:`keel.contracts.progress` — live progress events;
- :mod:`keel.contracts.limits` — effective limits (profile ceilings lowered per run);
- :mod:`keel.contracts.content` — content by reference (digests, ``ContentRef``);
- :mod:`keel.contracts.errors` — Keel's typed, user-facing errors;
- :mod:`keel.contracts.names` — workflow, activity, message, search-attribute and ``_meta``
  names, and error codes.

This package imports nothing else from Keel. Evolve its models only by adding optional
fields: running workflows replay against the payloads already in history.
"""

from keel.contracts.approvals import (
    ApprovalRequest,
    ApproverIdentity,
    ApproverKeys,
    Decision,
    DecisionOutcome,
    DecisionRecord,
)
from keel.contracts.content import ContentRef, canonical_json, content_digest, ref_for
from keel.contracts.context_budget import ContextSettings
from keel.contracts.context_view import (
    SUMMARIZE_MARKER,
    SUMMARY_MARKER,
    CallMeta,
    ContextState,
    ContextView,
    MessageMeta,
    SummaryTask,
)
from keel.contracts.continued import ContinuedRun, is_continued
from keel.contracts.decisions import (
    ANSWER_TOOL,
    DECISION_SERVER,
    HUMAN,
    DecisionAttempt,
    DecisionNodeRecord,
    DecisionSettings,
    answer_parameters,
)
from keel.contracts.digest import approval_digest
from keel.contracts.errors import ConfigError, InputError, KeelError, ProfileError
from keel.contracts.failure_classes import RUN_FAILURE_CLASSES, FailureClass
from keel.contracts.fallback import (
    DEFAULT_TRIGGERS,
    FALLBACK_TICKET,
    FallbackRecord,
    FallbackSettings,
)
from keel.contracts.fallback_run import Fact, FallbackInput, FallbackResult, FallbackStep
from keel.contracts.history import HistorySettings
from keel.contracts.limits import LimitError, effective_limits, extend_limits
from keel.contracts.llm import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    ConversationState,
    ImagePart,
    ToolCall,
    ToolSpec,
    Usage,
    cache_savings,
    call_cost,
    message_content_bytes,
)
from keel.contracts.model_settings import (
    FallbackModel,
    ModelSettings,
    Price,
    ProviderName,
    TierModel,
)
from keel.contracts.names import PROGRESS_TOPIC
from keel.contracts.profile import (
    LIMIT_FIELDS,
    ApprovalCondition,
    ApprovalDefault,
    ApprovalRule,
    ApprovalSettings,
    Check,
    EscalationSettings,
    Limits,
    Lookup,
    Profile,
    ProgressTemplates,
    Reversibility,
    ServerSettings,
    ToolPolicy,
)
from keel.contracts.progress import PROGRESS_KINDS, ProgressEvent
from keel.contracts.resolution import Resolution, ResolveAction, ResolveOutcome, UnresolvedCall
from keel.contracts.result import RunResult, RunStatus, StepRecord
from keel.contracts.routing import (
    ROUTE_REASONS,
    EscalationTrigger,
    RouterState,
    RoutingSettings,
    route_reason,
)
from keel.contracts.run import (
    AgentInput,
    ClosedState,
    Guidance,
    LimitOverrides,
    Principal,
    RunOutcome,
    RunState,
    StepKind,
    StepOutcome,
)
from keel.contracts.spend import ALERT_THRESHOLDS, SpendSettings, SpendTag
from keel.contracts.templates import template_fields

__all__ = [
    "ALERT_THRESHOLDS",
    "ANSWER_TOOL",
    "DECISION_SERVER",
    "DEFAULT_TRIGGERS",
    "FALLBACK_TICKET",
    "HUMAN",
    "LIMIT_FIELDS",
    "PROGRESS_KINDS",
    "PROGRESS_TOPIC",
    "ROUTE_REASONS",
    "RUN_FAILURE_CLASSES",
    "SUMMARIZE_MARKER",
    "SUMMARY_MARKER",
    "AgentInput",
    "ApprovalCondition",
    "ApprovalDefault",
    "ApprovalRequest",
    "ApprovalRule",
    "ApprovalSettings",
    "ApproverIdentity",
    "ApproverKeys",
    "CallMeta",
    "ChatMessage",
    "ChatRequest",
    "ChatResponse",
    "Check",
    "ClosedState",
    "ConfigError",
    "ContentRef",
    "ContextSettings",
    "ContextState",
    "ContextView",
    "ContinuedRun",
    "ConversationState",
    "Decision",
    "DecisionAttempt",
    "DecisionNodeRecord",
    "DecisionOutcome",
    "DecisionRecord",
    "DecisionSettings",
    "EscalationSettings",
    "EscalationTrigger",
    "Fact",
    "FailureClass",
    "FallbackInput",
    "FallbackModel",
    "FallbackRecord",
    "FallbackResult",
    "FallbackSettings",
    "FallbackStep",
    "Guidance",
    "HistorySettings",
    "ImagePart",
    "InputError",
    "KeelError",
    "LimitError",
    "LimitOverrides",
    "Limits",
    "Lookup",
    "MessageMeta",
    "ModelSettings",
    "Price",
    "Principal",
    "Profile",
    "ProfileError",
    "ProgressEvent",
    "ProgressTemplates",
    "ProviderName",
    "Resolution",
    "ResolveAction",
    "ResolveOutcome",
    "Reversibility",
    "RouterState",
    "RoutingSettings",
    "RunOutcome",
    "RunResult",
    "RunState",
    "RunStatus",
    "ServerSettings",
    "SpendSettings",
    "SpendTag",
    "StepKind",
    "StepOutcome",
    "StepRecord",
    "SummaryTask",
    "TierModel",
    "ToolCall",
    "ToolPolicy",
    "ToolSpec",
    "UnresolvedCall",
    "Usage",
    "answer_parameters",
    "approval_digest",
    "cache_savings",
    "call_cost",
    "canonical_json",
    "content_digest",
    "effective_limits",
    "extend_limits",
    "is_continued",
    "message_content_bytes",
    "ref_for",
    "route_reason",
    "template_fields",
]
