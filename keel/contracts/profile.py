"""The agent profile: model, servers, tools and their policies, limits, approvals.

Loaded from TOML by an activity, then carried in history for the whole run. Evolve only by
adding optional fields: running workflows replay against the payloads already in history.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from keel.contracts._base import Strict
from keel.contracts.context_budget import ContextSettings
from keel.contracts.decisions import DecisionSettings, escalation_problems
from keel.contracts.fallback import FALLBACK_TICKET, FallbackSettings
from keel.contracts.history import HistorySettings
from keel.contracts.model_settings import ModelSettings, TierModel
from keel.contracts.routing import RoutingSettings, routing_problems
from keel.contracts.spend import SpendSettings
from keel.contracts.templates import template_fields

ApprovalDefault = Literal["writes", "all", "none"]


def _check_pattern(pattern: str | None) -> str | None:
    """An error pattern must compile; the error is one readable line."""
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return pattern


# An OAuth scope token (RFC 6749 §3.3): printable ASCII but space, '"' and '\\'.
ScopeName = Annotated[str, Field(pattern=r"^[\x21\x23-\x5b\x5d-\x7e]+$")]


class ServerSettings(Strict):
    """One MCP server the profile may use, and which of its tools are allowed."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    tools: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    max_attempts: int = Field(default=5, ge=1, le=100)
    trusted: bool = Field(
        default=False,
        description="believe the server's MCP annotations (read-only, destructive, open-world)",
    )
    deduplicates: bool = Field(
        default=False,
        description="the server honours io.keel/idempotency-key, so writes may be retried",
    )
    approval: ApprovalDefault | None = Field(
        default=None,
        description="which calls wait for a human by default: 'writes' (not read-only by"
        " annotation), 'all', 'none'; unset: 'writes' if trusted, else 'all'",
    )
    error_pattern: str | None = Field(
        default=None, description="regex: a text result that matches is a tool error"
    )
    schedule_to_close_seconds: float | None = Field(
        default=None, gt=0, le=86400, description="bound on one tool call including retries"
    )
    max_result_bytes: int = Field(
        default=65_536,
        ge=1024,
        le=900_000,
        description="a larger tool result is cut to this size for the model, with a marker",
    )
    scopes: list[ScopeName] | None = Field(
        default=None,
        description="the scopes of the worker's access tokens for this server; unset: every"
        " scope the server's protected resource metadata lists",
    )
    identity: bool | None = Field(
        default=None,
        description="set by the worker when it loads the profile, not by hand: the server"
        " gets access tokens naming the run's principal (an HTTP server, a signing key)",
    )

    def allows(self, tool: str) -> bool:
        return "*" in self.tools or tool in self.tools

    @property
    def approval_default(self) -> ApprovalDefault:
        """The server's approval default: as set, else ``writes`` if trusted, else ``all``."""
        if self.approval is not None:
            return self.approval
        return "writes" if self.trusted else "all"

    @field_validator("error_pattern")
    @classmethod
    def _valid_error_pattern(cls, pattern: str | None) -> str | None:
        return _check_pattern(pattern)


class Limits(Strict):
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


class EscalationSettings(Strict):
    """What happens when a limit trips: halt at once, or wait (bounded) for a human ``guide``."""

    on_limit: Literal["halt", "escalate"] = "halt"
    timeout_seconds: float = Field(default=3600, gt=0, le=30 * 86400)
    resolve_timeout_seconds: float = Field(
        default=3600,
        gt=0,
        le=30 * 86400,
        description="how long a write whose answer was lost waits for a human's resolve",
    )


class Lookup(Strict):
    """A read-only tool call whose result a semantic check refers to as ``$<name>.<path>``."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    tool: str
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="values may be '$<argument path>' of the checked call"
    )


class Check(Strict):
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


class ApprovalCondition(Strict):
    """Approval is needed when the argument is above ``above`` (e.g. refunds above 50.00)."""

    argument: str
    above: float


class ApprovalRule(Strict):
    """When a tool's calls wait for a human decision, and who may decide.

    ``auto`` (default): irreversible calls wait, others do not. ``always`` / ``never``
    override the class. ``when`` narrows it: approval only if any condition holds.
    """

    required: Literal["auto", "always", "never"] = "auto"
    when: list[ApprovalCondition] = Field(default_factory=list)
    approver_roles: list[str] | None = Field(
        default=None, description="roles allowed to decide; default: the profile's approvals"
    )


class ProgressTemplates(Strict):
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


class ToolPolicy(Strict):
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
    error_pattern: str | None = Field(
        default=None, description="regex: a text result that matches is a tool error"
    )

    @field_validator("error_pattern")
    @classmethod
    def _valid_error_pattern(cls, pattern: str | None) -> str | None:
        return _check_pattern(pattern)


class ApprovalSettings(Strict):
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
    require_identity: bool = Field(
        default=False,
        description="decisions must carry a verified identity token (docs/security.md);"
        " the decider's name and roles come from it",
    )


class Profile(Strict):
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
    history: HistorySettings = Field(default_factory=HistorySettings)
    tiers: dict[str, TierModel] = Field(
        default_factory=dict,
        description="named models ([tiers.<name>]) that routing and decisions send steps to",
    )
    routing: RoutingSettings | None = Field(
        default=None, description="which tier serves which step; None: [model] serves all"
    )
    context: ContextSettings | None = Field(
        default=None, description="a per-step input-token budget; None: the whole conversation"
    )
    spend: SpendSettings | None = Field(
        default=None, description="budgets across runs, per day and month ([spend])"
    )
    decisions: dict[str, DecisionSettings] = Field(default_factory=dict)
    pipeline: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="the hybrid pipeline that runs this profile (workflow type"
        " keel.pipeline.<pipeline>); None: the agent loop (AgentWorkflow)",
    )
    parameters: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="a pipeline's own settings ([parameters]; its docs)"
    )
    fallback: FallbackSettings | None = Field(
        default=None, description="a workflow that takes over a run that halts or fails"
    )
    payload_store: bool | None = Field(
        default=None,
        description="set by the worker when it loads the profile, not by hand: its payloads"
        " over KEEL_PAYLOAD_THRESHOLD go to the content store, so no input is too large",
    )

    @field_validator("servers")
    @classmethod
    def _unique_servers(cls, servers: list[ServerSettings]) -> list[ServerSettings]:
        names = [s.name for s in servers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"server listed more than once: {', '.join(duplicates)}")
        return servers

    @model_validator(mode="after")
    def _escalation_tiers(self) -> Profile:
        problems = escalation_problems(self.decisions, set(self.tiers))
        problems += routing_problems(self.routing, set(self.tiers))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def tier_model(self, name: str | None) -> ModelSettings:
        """The settings of tier ``name`` (its fallbacks its own); ``[model]`` for None."""
        if name is None:
            return self.model
        return self.model.tier(self.tiers[name])

    @model_validator(mode="after")
    def _ticket_server_listed(self) -> Profile:
        fallback, listed = self.fallback, [s.name for s in self.servers]
        if fallback and fallback.workflow == FALLBACK_TICKET and fallback.server not in listed:
            raise ValueError(f"fallback.server {fallback.server!r} is not a server of the profile")
        return self
