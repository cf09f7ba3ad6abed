"""Every payload that crosses a process or history boundary, as pydantic models.

Workflow input and result, activity requests and responses, the resolved profile and the
status query all live here so that the wire format has one definition. Evolve these only by
adding optional fields: running workflows replay against the payloads already in history.
"""

from __future__ import annotations

import string
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# --------------------------------------------------------------------------------------------
# Profiles (loaded from TOML by an activity, then carried in history for the whole run)
# --------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a profile must not silently become a default."""

    model_config = ConfigDict(extra="forbid")


class Price(_Strict):
    """USD per million tokens. Cached input defaults to the input price when not given."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)


class FallbackModel(_Strict):
    """A model of a fallback chain; unset fields are taken from the primary model."""

    name: str = Field(min_length=1)
    base_url: str = ""
    api_key_env: str = ""
    price: Price | None = None
    pricing_provider: str = ""
    price_as: str = ""
    max_output_tokens: int | None = Field(default=None, ge=1, le=200_000)
    timeout_seconds: float | None = Field(default=None, gt=0, le=3600)


class ModelSettings(_Strict):
    """Which model serves the run and how to reach it.

    ``base_url`` and ``api_key_env`` left empty are filled from the worker's environment
    (``KEEL_LLM_BASE_URL``, ``KEEL_LLM_API_KEY_ENV``) when the profile is resolved. The key
    itself never enters history: only the *name* of the environment variable does.
    """

    name: str = Field(
        min_length=1, description="model id, e.g. 'gpt-4o-mini' or 'sim/support_demo'"
    )
    base_url: str = ""
    api_key_env: str = ""
    max_output_tokens: int = Field(default=1024, ge=1, le=200_000)
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    max_attempts: int = Field(default=5, ge=1, le=100)
    price: Price | None = Field(
        default=None, description="explicit price; else looked up in genai-prices at load"
    )
    pricing_provider: str = Field(
        default="", description="genai-prices provider id for the lookup, e.g. 'openai'"
    )
    price_as: str = Field(
        default="", description="price this model like another model id (e.g. a simulator)"
    )
    schedule_to_close_seconds: float | None = Field(
        default=None, gt=0, le=86400, description="bound on one model call including retries"
    )
    fallbacks: list[FallbackModel] = Field(
        default_factory=list,
        description="models tried in order when this one's circuit is open or it fails for good",
    )

    def served_by(self, fallback: FallbackModel) -> ModelSettings:
        """The full settings of a fallback model: its own fields over this model's."""
        update: dict[str, Any] = {
            key: value
            for key, value in fallback.model_dump(exclude_none=True).items()
            if value != "" and key != "price"
        }
        update["price"] = fallback.price
        update["fallbacks"] = []
        return self.model_copy(update=update)

    def chain(self) -> list[ModelSettings]:
        """This model, then its fallbacks, in the order they are tried."""
        return [self, *(self.served_by(fb) for fb in self.fallbacks)]


class ServerSettings(_Strict):
    """One MCP server the profile may use, and which of its tools are allowed."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    tools: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    max_attempts: int = Field(default=5, ge=1, le=100)
    trusted: bool = Field(
        default=False,
        description="trust the server's MCP annotations and its idempotency-key deduplication",
    )
    schedule_to_close_seconds: float | None = Field(
        default=None, gt=0, le=86400, description="bound on one tool call including retries"
    )

    def allows(self, tool: str) -> bool:
        return "*" in self.tools or tool in self.tools


class Limits(_Strict):
    """Ceilings for a run. Callers may lower them per run, never raise them.

    ``None`` means unlimited for the optional budgets.
    """

    max_steps: int = Field(default=10, ge=1, le=1000, description="model calls per run")
    max_tool_calls: int = Field(default=30, ge=0, le=10_000, description="tool calls per run")
    max_tokens: int | None = Field(default=None, ge=1, description="input + output tokens")
    max_cost_usd: float | None = Field(default=None, gt=0, description="model spend in USD")
    max_wall_clock_seconds: float | None = Field(default=None, gt=0, le=30 * 86400)
    max_repeated_calls: int = Field(
        default=3, ge=1, le=100, description="same tool with the same arguments, N-th time halts"
    )
    max_idle_steps: int = Field(
        default=3, ge=1, le=100, description="K consecutive steps that add no new information"
    )


LIMIT_FIELDS = (
    "max_steps",
    "max_tool_calls",
    "max_tokens",
    "max_cost_usd",
    "max_wall_clock_seconds",
    "max_repeated_calls",
    "max_idle_steps",
)


class EscalationSettings(_Strict):
    """What happens when a limit trips: halt at once, or wait (bounded) for a human ``guide``."""

    on_limit: Literal["halt", "escalate"] = "halt"
    timeout_seconds: float = Field(default=3600, gt=0, le=30 * 86400)


class Lookup(_Strict):
    """A read-only tool call whose result a semantic check refers to as ``$<name>.<path>``."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    tool: str
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="values may be '$<argument path>' of the checked call"
    )


class Check(_Strict):
    """One declarative semantic rule on an argument of a tool call.

    ``min`` / ``max`` are numbers or references (``$arg.path`` to another argument of the call,
    ``$lookup.path`` into a lookup's result); ``exists`` names a lookup that must succeed
    (the identifier exists); ``min_date`` / ``max_date`` are ISO dates or offsets from now
    such as ``-30d`` / ``+0d``.
    """

    argument: str
    min: float | str | None = None
    max: float | str | None = None
    exists: str | None = None
    min_date: str | None = None
    max_date: str | None = None
    message: str = Field(default="", description="how to fix it, shown to the model")


Reversibility = Literal["read", "reversible", "irreversible"]


class ApprovalCondition(_Strict):
    """Approval is needed when the argument is above ``above`` (e.g. refunds above 50.00)."""

    argument: str
    above: float


class ApprovalRule(_Strict):
    """When a tool's calls wait for a human decision, and who may decide.

    ``auto`` (default): irreversible calls wait, others do not. ``always`` / ``never``
    override the class. ``when`` narrows it: approval only if any condition holds.
    """

    required: Literal["auto", "always", "never"] = "auto"
    when: list[ApprovalCondition] = Field(default_factory=list)
    approver_roles: list[str] | None = Field(
        default=None, description="roles allowed to decide; default: the profile's approvals"
    )


def template_fields(template: str) -> list[str]:
    """The placeholder names of a progress template; ``ValueError`` says what is wrong with it.

    Placeholders are plain names (``{order_id}``) with an optional format spec
    (``{amount:.2f}``); positional fields, attribute or index access and nested fields are
    refused, so a template can only read the values Keel hands it.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {exc}") from None
    names: list[str] = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(
                f"template {template!r}: placeholder {{{name}}} must be a plain name such as"
                " {order_id} (no positions, attributes or indexes)"
            )
        if conversion not in (None, "s", "r"):
            raise ValueError(f"template {template!r}: unknown conversion !{conversion}")
        if spec and "{" in spec:
            raise ValueError(f"template {template!r}: nested placeholders are not supported")
        if spec and not (_spec_fits(spec, 0.0) or _spec_fits(spec, "")):
            raise ValueError(
                f"template {template!r}: format spec :{spec} fits neither numbers nor text"
            )
        names.append(name)
    return names


def _spec_fits(spec: str, sample: Any) -> bool:
    try:
        format(sample, spec)
    except (ValueError, TypeError):
        return False
    return True


class ProgressTemplates(_Strict):
    """How a tool call reads in a run's live progress (``keel run`` / ``keel watch``).

    ``call`` (when the call starts) and ``approval`` (when it waits for a human) may use the
    call's argument names; ``done`` may also use the top-level fields of the result (a JSON
    object), ``count`` (the length of a list result, or of the result's only list field),
    ``<field>_count`` for each list field, and ``tool``. A template that cannot be filled for
    a call falls back to the generic text, e.g. ``calling get_order(order_id=ORD-1042)``.
    """

    call: str | None = Field(default=None, description="e.g. 'looking up order {order_id}…'")
    done: str | None = Field(default=None, description="e.g. 'found {count} orders'")
    approval: str | None = Field(
        default=None, description="what the approval wait shows, e.g. 'refund_order ${amount:.2f}'"
    )

    @field_validator("call", "done", "approval")
    @classmethod
    def _valid_template(cls, template: str | None) -> str | None:
        if template is not None:
            if not template.strip():
                raise ValueError("a template must not be empty (leave it out instead)")
            template_fields(template)
        return template


class ToolPolicy(_Strict):
    """Per-tool rules: who may call it (authorization), what must hold (semantic), how
    reversible it is and when it needs a human decision (approval)."""

    roles: list[str] = Field(
        default_factory=list, description="principal needs one of these roles; empty = anyone"
    )
    lookups: list[Lookup] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    reversibility: Reversibility | None = Field(
        default=None, description="overrides what the server's annotations say"
    )
    approval: ApprovalRule = Field(default_factory=ApprovalRule)
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=3600, description="start-to-close of one attempt (server default)"
    )
    schedule_to_close_seconds: float | None = Field(
        default=None, gt=0, le=86400, description="bound including retries (server default)"
    )
    progress: ProgressTemplates | None = Field(
        default=None, description="how calls of this tool read in the live progress"
    )


class ApprovalSettings(_Strict):
    """Profile-wide approval behaviour."""

    timeout_seconds: float = Field(default=3600, gt=0, le=30 * 86400)
    on_timeout: Literal["reject", "escalate"] = "reject"
    escalation_webhook: str = Field(
        default="", description="URL notified (POST JSON) when an approval escalates"
    )
    escalation_timeout_seconds: float = Field(default=86400, gt=0, le=30 * 86400)
    approver_roles: list[str] = Field(
        default_factory=list, description="roles allowed to decide; empty = anyone"
    )


class Profile(_Strict):
    """An agent profile: prompt, model, servers and tools, limits."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    description: str = ""
    system_prompt: str = Field(min_length=1)
    model: ModelSettings
    servers: list[ServerSettings] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    tools: dict[str, ToolPolicy] = Field(default_factory=dict)
    approvals: ApprovalSettings = Field(default_factory=ApprovalSettings)

    @field_validator("servers")
    @classmethod
    def _unique_servers(cls, servers: list[ServerSettings]) -> list[ServerSettings]:
        names = [s.name for s in servers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"server listed more than once: {', '.join(duplicates)}")
        return servers


# --------------------------------------------------------------------------------------------
# Workflow input
# --------------------------------------------------------------------------------------------


class Principal(_Strict):
    """Who the run acts for; authorization (a later layer) checks these roles."""

    id: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(default_factory=list)


class LimitOverrides(_Strict):
    """Per-run limits; each must be at or below the profile's ceiling."""

    max_steps: int | None = Field(default=None, ge=1)
    max_tool_calls: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    max_wall_clock_seconds: float | None = Field(default=None, gt=0)
    max_repeated_calls: int | None = Field(default=None, ge=1)
    max_idle_steps: int | None = Field(default=None, ge=1)


class AgentInput(_Strict):
    """Input of ``AgentWorkflow``."""

    profile: str = Field(min_length=1, max_length=64)
    task: str = Field(min_length=1, max_length=100_000)
    principal: Principal = Field(default_factory=lambda: Principal(id="anonymous"))
    limits: LimitOverrides | None = None


# --------------------------------------------------------------------------------------------
# LLM activity
# --------------------------------------------------------------------------------------------


class ToolCall(BaseModel):
    """A tool call as the model produced it; ``arguments`` is the raw JSON text, unparsed."""

    id: str
    name: str
    arguments: str = "{}"


class ChatMessage(BaseModel):
    """One message of the conversation, in a provider-neutral shape."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


class ToolSpec(BaseModel):
    """A tool offered to the model: MCP name, description and input schema, plus its server."""

    server: str
    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    annotations: dict[str, Any] = Field(default_factory=dict)


class Usage(BaseModel):
    """Token usage as the provider reported it."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def plus(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class ChatRequest(BaseModel):
    """Input of the ``keel.llm.chat`` activity."""

    model: ModelSettings
    messages: list[ChatMessage]
    tools: list[ToolSpec] = Field(default_factory=list)
    conversation_id: str = Field(description="stable per run; lets providers group requests")
    max_output_tokens: int | None = Field(
        default=None,
        ge=1,
        description="this call's cap, when a budget leaves less than the model's",
    )
    step: int | None = Field(
        default=None, ge=1, description="the run's model-call index, for logs, spans, metrics"
    )


class ChatResponse(BaseModel):
    """Output of the ``keel.llm.chat`` activity."""

    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str
    finish_reason: str | None = None
    latency_ms: float = 0.0
    attempt: int = 1


# --------------------------------------------------------------------------------------------
# Run state and result
# --------------------------------------------------------------------------------------------

RunState = Literal[
    "running", "awaiting_approval", "awaiting_guidance", "halted", "completed", "failed"
]
RunOutcome = Literal["completed", "halted", "rejected", "failed"]
StepKind = Literal["model", "tool"]
StepOutcome = Literal["ok", "tool_error", "invalid", "refused", "rejected", "failed"]


class StepRecord(BaseModel):
    """What happened at one model call or one tool call."""

    step: int = Field(description="model-call index this record belongs to (1-based)")
    kind: StepKind
    name: str = Field(description="model name, or tool name")
    server: str | None = None
    tool_call_id: str | None = None
    started_at: datetime
    latency_ms: float = 0.0
    usage: Usage | None = None
    attempts: int = 1
    outcome: StepOutcome = "ok"
    detail: str = ""
    idempotency_key: str | None = None
    cost_usd: float | None = None
    validation: str | None = Field(
        default=None, description="'passed', or '<layer>: <message>' for a refused tool call"
    )


class ApprovalRequest(BaseModel):
    """A tool call waiting for a human: what, for whom, why, on what, until when."""

    approval_id: str
    workflow_id: str
    step: int
    tool_call_id: str
    tool: str
    server: str
    arguments: dict[str, Any]
    principal: Principal
    reversibility: Reversibility
    reason: str | None = Field(default=None, description="the model's stated reason")
    context: dict[str, Any] = Field(
        default_factory=dict, description="what the call acts on (semantic lookups' results)"
    )
    approver_roles: list[str] = Field(default_factory=list)
    created_at: datetime
    expires_at: datetime
    escalated: bool = False


class Decision(BaseModel):
    """Payload of the ``decide`` signal and update."""

    model_config = ConfigDict(extra="forbid")

    approval_id: str = Field(min_length=1)
    decision: Literal["approve", "reject", "edit"]
    arguments: dict[str, Any] | None = None
    reason: str | None = None
    by: str | None = None
    roles: list[str] = Field(
        default_factory=list, description="the decider's roles, checked against approver_roles"
    )


class DecisionRecord(BaseModel):
    """One entry of the audit trail: who decided what, when, and what came of it."""

    approval_id: str
    tool: str
    decision: Literal["approve", "reject", "edit", "timeout", "refused"]
    by: str | None = None
    at: datetime
    reason: str | None = None
    arguments: dict[str, Any] | None = None
    outcome: str = ""
    requested_at: datetime | None = Field(
        default=None, description="when the request was made (time to decision = at - this)"
    )
    step: int | None = None


class DecisionOutcome(BaseModel):
    """What the ``decide`` update answers."""

    approval_id: str
    accepted: bool
    status: str
    message: str = ""


class RunStatus(BaseModel):
    """Answer of the ``status`` query."""

    state: RunState
    profile: str
    step: int
    tool_calls: int
    usage: Usage
    last_event: str
    cost_usd: float = 0.0
    pending_approvals: int = 0


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


# --------------------------------------------------------------------------------------------
# Live progress (the run's workflow stream, topic "progress")
# --------------------------------------------------------------------------------------------

PROGRESS_TOPIC = "progress"
PROGRESS_KINDS = (
    "run.started",
    "model.started",
    "model.finished",
    "tool.started",
    "tool.finished",
    "tool.refused",
    "approval.requested",
    "approval.escalated",
    "approval.decided",
    "guidance.requested",
    "guidance.received",
    "run.stop",
    "run.finished",
)


class ProgressEvent(BaseModel):
    """One entry of a run's live progress, published by the workflow after the fact.

    ``kind`` is one of ``PROGRESS_KINDS`` (a plain string, so a newer worker's kinds do not
    break an older client); ``message`` is the line a person reads; ``data`` holds a few
    structured values that differ per kind (see docs/operations.md).
    """

    kind: str
    message: str
    at: datetime
    step: int | None = None
    tool: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
