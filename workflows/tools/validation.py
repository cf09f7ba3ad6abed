"""Tool-call validation in three layers, run in the workflow before any call fires.

1. **schema** — the tool exists in the run's catalog and the arguments are a JSON object that
   satisfies the tool's input schema (Draft 2020-12, with exact ``multipleOf``; see
   :mod:`workflows.tools.schemas`). :class:`Validator` compiles each schema once per run.
2. **semantic** — the profile's declarative rules for the tool (:mod:`workflows.tools.semantics`):
   :func:`plan_lookups` says which read-only tool calls to make, the workflow runs them as
   activities, :func:`check_semantics` judges the call with their results.
3. **authorization** — :func:`check_authorization`: the principal holds a role the policy asks.

A call that fails a layer never reaches its MCP server. The model gets
:meth:`Rejection.as_tool_content` instead — the layer, the field, what is wrong and how to
fix it — as an ordinary tool message, so it can correct itself. All of this is pure and
deterministic (no I/O, no clock: ``now`` is passed in), so it is safe to replay.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from jsonschema.protocols import Validator as SchemaValidator

from keel.contracts import Principal, ToolCall, ToolPolicy, ToolSpec
from keel.contracts.errors import closest
from keel.contracts.json_text import TooDeep, loads_bounded
from workflows.tools.policy_problems import policy_problems
from workflows.tools.schemas import Issue, ToolInputValidator, describe_schema, schema_issues, show
from workflows.tools.semantics import (
    LookupRequest,
    LookupResult,
    PolicyError,
    evaluate,
    plan,
)

__all__ = [
    "Issue",
    "LookupRequest",
    "LookupResult",
    "PolicyError",
    "PreparedCall",
    "Rejection",
    "Validator",
    "check_authorization",
    "check_policies",
    "check_schema",
    "check_semantics",
    "plan_lookups",
]

RejectionKind = Literal["unknown_tool", "schema", "semantic", "authorization"]
Layer = Literal["schema", "semantic", "authorization"]
ValidationFailure = Literal[
    "tool_hallucination", "schema_violation", "semantic_violation", "unauthorized"
]
_FAILURE: dict[str, ValidationFailure] = {
    "unknown_tool": "tool_hallucination",
    "schema": "schema_violation",
    "semantic": "semantic_violation",
    "authorization": "unauthorized",
}


@dataclass(frozen=True)
class PreparedCall:
    """A tool call whose arguments passed the schema layer (parsed, ready to send)."""

    call: ToolCall
    tool: ToolSpec
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    """A tool call refused by a validation layer; it goes back to the model as data.

    ``field`` is the argument path of the first (best) issue, ``message`` says what is
    wrong, ``hint`` how to fix it; ``issues`` keeps every problem found, best first.
    """

    call: ToolCall
    kind: RejectionKind
    field: str | None
    message: str
    hint: str
    issues: tuple[Issue, ...] = ()

    @property
    def layer(self) -> Layer:
        return "schema" if self.kind in ("unknown_tool", "schema") else self.kind  # type: ignore[return-value]

    @property
    def failure_class(self) -> ValidationFailure:
        """The run's failure class if this refusal ends it (e.g. the model keeps repeating it)."""
        return _FAILURE[self.kind]

    def as_tool_content(self) -> str:
        """The tool message the model receives instead of a result."""
        return json.dumps(
            {
                "error": "invalid_tool_call",
                "layer": self.layer,
                "field": self.field,
                "message": self.message,
                "fix": self.hint,
            },
            ensure_ascii=False,
        )


def _from_issues(call: ToolCall, kind: RejectionKind, lead: str, issues: list[Issue]) -> Rejection:
    problems = "; ".join(f"{i.field}: {i.problem}" if i.field else i.problem for i in issues)
    fixes = "; ".join(f"{i.field}: {i.fix}" if i.field else i.fix for i in issues)
    return Rejection(call, kind, issues[0].field, f"{lead} {problems}", fixes, tuple(issues))


# ---------------------------------------------------------------------------- schema layer


class Validator:
    """The schema layer for one run's catalog; each tool's schema is compiled on first use.

    Build it once per run (the catalog is fixed for the run), keep it in workflow state.
    """

    def __init__(self, catalog: list[ToolSpec]) -> None:
        self._tools = {tool.name: tool for tool in catalog}
        self._compiled: dict[str, SchemaValidator] = {}

    def check_schema(self, call: ToolCall) -> PreparedCall | Rejection:
        """Tool name, JSON parsing and the input schema; never raises for a model mistake."""
        tool = self._tools.get(call.name)
        if tool is None:
            return _unknown_tool(call, sorted(self._tools))
        arguments, problem = _parse_arguments(call.arguments)
        if problem is not None:
            lead = f"{call.name} was not called: its arguments {problem}."
            fix = f"send one JSON object: {signature(tool.input_schema)}"
            return Rejection(call, "schema", None, lead, fix)
        issues = self.issues(tool, arguments)
        if issues:
            lead = f"{call.name} was not called: its arguments do not match its input schema."
            return _from_issues(call, "schema", lead, issues)
        return PreparedCall(call, tool, arguments)

    def issues(self, tool: ToolSpec, arguments: dict[str, Any]) -> list[Issue]:
        """Every way ``arguments`` break ``tool``'s input schema, best first."""
        validator = self._compiled.get(tool.name)
        if validator is None:
            validator = ToolInputValidator(tool.input_schema)
            self._compiled[tool.name] = validator
        return schema_issues(validator.iter_errors(arguments))


def check_schema(call: ToolCall, catalog: list[ToolSpec]) -> PreparedCall | Rejection:
    """One-off schema check; in a workflow keep a :class:`Validator` for the run instead."""
    return Validator(catalog).check_schema(call)


def _unknown_tool(call: ToolCall, available: list[str]) -> Rejection:
    hints = closest(call.name, available)
    message = f"Unknown tool {call.name!r}."
    if hints:
        message += f" Did you mean: {', '.join(hints)}?"
    message += f" Available tools: {', '.join(available) or 'none'}."
    fix = (
        f"call {hints[0]} (exact name) instead"
        if hints
        else "call one of the available tools by its exact name"
    )
    return Rejection(call, "unknown_tool", None, message, fix)


def _parse_arguments(text: str) -> tuple[dict[str, Any], str | None]:
    """(arguments, None) or ({}, what is wrong). NaN and Infinity are not JSON: refused."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        value = loads_bounded(text or "{}", parse_constant=no_constant)
    except TooDeep as exc:
        return {}, f"are {exc}: flatten them"
    except json.JSONDecodeError as exc:
        return {}, f"are not valid JSON: {exc.msg} (character {exc.pos})"
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        return {}, f"are not valid JSON: {exc}"
    if not isinstance(value, dict):
        return {}, f"must be a JSON object, not {show(value)}"
    return value, None


def signature(schema: dict[str, Any]) -> str:
    """``{"order_id": string, "amount": number, "note"?: string or null}`` for hints."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    parts = [
        f"{json.dumps(name)}{'' if name in required else '?'}: {describe_schema(sub)}"
        for name, sub in properties.items()
    ]
    return "{" + ", ".join(parts) + "}"


# ---------------------------------------------------------------------------- semantic layer


def plan_lookups(
    prepared: PreparedCall,
    policy: ToolPolicy,
    catalog_all: list[ToolSpec],
    is_read: Callable[[ToolSpec], bool] | None = None,
) -> list[LookupRequest] | Rejection:
    """The read-only tool calls the policy's checks need, with ``$`` references resolved.

    ``catalog_all`` is every tool of the run's servers (a lookup tool need not be offered to
    the model). Resolved arguments are checked against the lookup tool's schema, so a value
    the lookup could never accept is refused here, naming the call's argument. Raises
    :class:`PolicyError` (a ``ValueError``) if the policy names a missing or writing tool.
    """
    planned = plan(prepared.call.name, prepared.arguments, policy, catalog_all, is_read)
    checker = Validator([tool for _, tool, _ in planned])
    requests = []
    for request, tool, source in planned:
        issues = checker.issues(tool, request.arguments)
        if issues:
            detail = "; ".join(i.text() for i in issues)
            lead = f"{prepared.call.name} was not called:"
            issue = Issue(
                source,
                "lookup",
                f"cannot be looked up with {tool.name} ({detail})",
                f"send a value {tool.name} accepts",
            )
            return _from_issues(prepared.call, "semantic", lead, [issue])
        requests.append(request)
    return requests


def check_semantics(
    prepared: PreparedCall,
    policy: ToolPolicy,
    lookups: dict[str, LookupResult],
    now: datetime,
) -> Rejection | None:
    """Judge the call against the policy's checks, given the results of its lookups."""
    issues = evaluate(prepared.call.name, prepared.arguments, policy, lookups, now)
    if not issues:
        return None
    return _from_issues(prepared.call, "semantic", f"{prepared.call.name} was not called:", issues)


def check_policies(
    policies: dict[str, ToolPolicy],
    catalog_all: list[ToolSpec],
    is_read: Callable[[ToolSpec], bool] | None = None,
) -> None:
    """Find policy mistakes once, at the start of a run, instead of at the first call.

    Raises :class:`PolicyError` listing every problem: unknown tools (a typo in a policy's
    name would silently drop its roles), lookups of tools that are missing or not read-only,
    references to arguments or lookups that do not exist.
    """
    problems = [
        problem
        for name, policy in policies.items()
        for problem in policy_problems(name, policy, catalog_all, is_read)
    ]
    if problems:
        raise PolicyError("invalid tool policy in the profile: " + "; ".join(problems))


# ---------------------------------------------------------------------------- authorization


def check_authorization(
    prepared: PreparedCall, policy: ToolPolicy | None, principal: Principal
) -> Rejection | None:
    """The principal must hold one of the policy's roles (no roles listed: anyone may)."""
    if policy is None or not policy.roles or set(policy.roles) & set(principal.roles):
        return None
    tool = prepared.call.name
    required = ", ".join(policy.roles)
    held = ", ".join(principal.roles) or "none"
    message = (
        f"{tool} was not called: it requires one of the roles [{required}];"
        f" principal {principal.id!r} has roles [{held}]."
    )
    hint = (
        f"do not retry {tool}: a human with one of the roles [{required}] must do it;"
        " tell the user what should be done and why"
    )
    return Rejection(prepared.call, "authorization", None, message, hint)
