"""The semantic layer: declarative per-tool rules that need data (does the order exist? how
much of it is still refundable?).

A profile's ``[tools.<name>]`` policy declares *lookups* (read-only tool calls whose results
the rules may refer to) and *checks* (rules on one argument or looked-up value). Checking is
split in two pure steps around the I/O, so workflows stay deterministic:

1. :func:`plan` turns the policy and the call's arguments into :class:`LookupRequest` s; the
   workflow runs them as ordinary MCP tool-call activities (read-only tools only);
2. :func:`evaluate` receives their :class:`LookupResult` s and returns the issues found.

References: ``"$<path>"`` is a dotted path. If its first segment names a lookup of the policy
it points into that lookup's result (``$order.refundable``), otherwise into the call's
arguments (``$order_id``, ``$address.zip``); ``"$$x"`` is the literal string ``"$x"``. A rule
on an optional argument the call did not send is skipped, and so is a lookup whose
arguments refer to one. Mistakes in the rules themselves raise :class:`PolicyError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from keel.contracts import Check, Lookup, ToolPolicy, ToolSpec
from keel.contracts.errors import closest
from workflows.tools.references import (
    MISSING,
    RELATIVE_DATE,
    argument_field,
    as_decimal,
    dig,
    literal,
    parse_day,
    plain,
    reference,
)
from workflows.tools.schemas import Issue, show

_TOOL_ERROR_PREFIX = re.compile(r"^Error executing tool \S+: ")
DEFAULT_EXISTS_FIX = "use an id returned by a search/list tool"


class PolicyError(ValueError):
    """A profile's tool policy is wrong (unknown tool, non-read-only lookup, bad reference).

    A profile mistake, not a model mistake: the run fails with a message for its author.
    """


@dataclass(frozen=True)
class LookupRequest:
    """A read-only tool call the workflow runs before checking a call's semantics."""

    name: str
    server: str
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LookupResult:
    """What a lookup returned: ``ok=False`` when the tool answered with ``is_error``;
    ``data`` None with ``ok`` when it answered without structured data (plain text, kept in
    ``text``). Checks need data: a lookup without any fails them, as a failed lookup does."""

    ok: bool
    data: dict[str, Any] | None = None
    error: str | None = None
    text: str | None = None

    @property
    def failed(self) -> bool:
        """Nothing a check can use: an error, or an answer without structured data."""
        return not self.ok or self.data is None


def shorten_said(text: str | None, limit: int = 200) -> str:
    """A lookup's plain-text answer, on one line and at most ``limit`` characters."""
    said = " ".join((text or "").split()) or "nothing"
    return said if len(said) <= limit else said[: limit - 1] + "…"


class _LookupFailed(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def lookup_tool(
    lookup: Lookup,
    catalog_all: list[ToolSpec],
    owner: str,
    is_read: Callable[[ToolSpec], bool] | None = None,
) -> ToolSpec:
    """The read-only tool a lookup calls; a missing or writing tool is a ``PolicyError``.

    ``is_read`` is the run's word on a tool being read-only (workflows/tools/trust.py: an
    untrusted server's own ``readOnlyHint`` is not enough); without it, the annotation."""
    found = [t for t in catalog_all if t.name == lookup.tool]
    where = f"tools.{owner}.lookups.{lookup.name}"
    if not found:
        hints = closest(lookup.tool, [t.name for t in catalog_all])
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        raise PolicyError(
            f"{where}: tool {lookup.tool!r} is not offered by the run's servers{hint}"
        )
    if len(found) > 1:
        servers = ", ".join(sorted(t.server for t in found))
        raise PolicyError(f"{where}: tool {lookup.tool!r} is offered by several servers: {servers}")
    tool = found[0]
    claimed = tool.annotations.get("read_only_hint") is True
    if is_read(tool) if is_read is not None else claimed:
        return tool
    if claimed:  # only the (untrusted) server says so
        raise PolicyError(
            f"{where}: tool {lookup.tool!r} is read-only only by the word of untrusted server"
            f" {tool.server!r}; lookups run before any approval, so the profile must vouch for"
            f' it: set [tools.{lookup.tool}] reversibility = "read" (or trust the server)'
        )
    raise PolicyError(
        f"{where}: tool {lookup.tool!r} is not annotated read-only (read_only_hint=true);"
        " lookups run before the call is approved, so they must not change anything"
    )


def plan(
    owner: str,
    arguments: dict[str, Any],
    policy: ToolPolicy,
    catalog_all: list[ToolSpec],
    is_read: Callable[[ToolSpec], bool] | None = None,
) -> list[tuple[LookupRequest, ToolSpec, str | None]]:
    """The lookups to run for one call, each with its tool and the argument that feeds it."""
    planned = []
    for lookup in policy.lookups:
        tool = lookup_tool(lookup, catalog_all, owner, is_read)
        resolved: dict[str, Any] = {}
        source: str | None = None
        for key, value in lookup.arguments.items():
            ref = reference(value)
            if ref is None:
                resolved[key] = literal(value)
                continue
            resolved[key] = dig(arguments, ref)
            source = source or ref
        if any(v is MISSING for v in resolved.values()):
            continue  # it refers to an argument the call did not send: nothing to look up
        request = LookupRequest(lookup.name, tool.server, tool.name, resolved)
        planned.append((request, tool, source))
    return planned


@dataclass
class _Scope:
    """What references resolve against while one call's checks are evaluated."""

    owner: str
    arguments: dict[str, Any]
    lookups: dict[str, Lookup]
    results: dict[str, LookupResult]
    now: datetime

    def resolve(self, ref: str) -> Any:
        """Value of ``ref`` (without ``$``); raises ``_LookupFailed`` for a failed lookup."""
        head, _, rest = ref.partition(".")
        if head not in self.lookups:
            return dig(self.arguments, ref)
        result = self.results.get(head)
        if result is None:
            return MISSING
        if result.failed:
            raise _LookupFailed(head)
        value = dig(result.data or {}, rest) if rest else result.data
        if value is MISSING:
            keys = ", ".join(sorted(result.data or {})) or "nothing"
            raise PolicyError(
                f"tools.{self.owner}: ${ref} is not in the result of {self.lookups[head].tool}"
                f" (it has: {keys})"
            )
        return value

    def is_lookup(self, ref: str | None) -> bool:
        return ref is not None and ref.partition(".")[0] in self.lookups

    def not_found(self, name: str, field_name: str | None, fix: str) -> Issue:
        """The exists-style issue for a lookup that failed."""
        lookup, result = self.lookups[name], self.results[name]
        ref = next((r for v in lookup.arguments.values() if (r := reference(v))), None)
        field_name = field_name or ref
        value = dig(self.arguments, field_name) if field_name else MISSING
        subject = str(value) if value is not MISSING else f"the {name}"
        if result.ok:  # an answer, but no structured data to check it against
            said = shorten_said(result.text)
            problem = (
                f"{subject} could not be verified: {lookup.tool} answered without structured"
                f" data ({lookup.tool} said: {said})"
            )
            return Issue(field_name, "exists", problem, fix or DEFAULT_EXISTS_FIX)
        said = _TOOL_ERROR_PREFIX.sub("", (result.error or "no details").strip())
        problem = f"{subject} does not exist ({lookup.tool} said: {said})"
        return Issue(field_name, "exists", problem, fix or DEFAULT_EXISTS_FIX)


def evaluate(
    owner: str,
    arguments: dict[str, Any],
    policy: ToolPolicy,
    results: dict[str, LookupResult],
    now: datetime,
) -> list[Issue]:
    """Every check of ``policy`` that the call fails, in policy order, without duplicates.

    A failed lookup is reported once, as "does not exist", however many checks use it.
    """
    scope = _Scope(owner, arguments, {lk.name: lk for lk in policy.lookups}, results, now)
    issues: list[Issue] = []
    failed: set[str] = set()
    for check in policy.checks:
        try:
            found = _evaluate(check, scope)
        except _LookupFailed as exc:
            if exc.name in failed:
                continue
            failed.add(exc.name)
            own = check.exists == exc.name  # its own exists check: its field and message
            field_name = argument_field(check) if own else None
            found = [scope.not_found(exc.name, field_name, check.message if own else "")]
        for issue in found:
            if all((i.field, i.problem) != (issue.field, issue.problem) for i in issues):
                issues.append(issue)
    return issues


def _evaluate(check: Check, scope: _Scope) -> list[Issue]:
    if check.exists is not None:
        if check.exists not in scope.lookups:
            raise PolicyError(
                f"tools.{scope.owner}: check on {check.argument!r} says exists={check.exists!r},"
                " but the policy declares no lookup of that name"
            )
        result = scope.results.get(check.exists)
        if result is not None and result.failed:
            raise _LookupFailed(check.exists)
    ref = reference(check.argument)
    value = scope.resolve(ref) if ref else dig(scope.arguments, check.argument)
    if value is MISSING or (value is None and not scope.is_lookup(ref)):
        return []  # an optional argument the call did not send, or a lookup that did not run
    issues: list[Issue] = []
    for bound, kind in ((check.min, "min"), (check.max, "max")):
        if bound is not None:
            issues.extend(_number_issue(check, value, bound, kind, scope))
    for spec, kind in ((check.min_date, "min_date"), (check.max_date, "max_date")):
        if spec:
            issues.extend(_date_issue(check, value, spec, kind, scope))
    return issues


_WORDS = {
    "min": ("is less than the minimum", "use {} or more"),
    "max": ("is more than the maximum", "use at most {}"),
    "min_date": ("is before the earliest allowed date", "use a date on or after {}"),
    "max_date": ("is after the latest allowed date", "use a date on or before {}"),
}


def _number_issue(
    check: Check, value: Any, bound: float | str, kind: str, scope: _Scope
) -> list[Issue]:
    number = as_decimal(value)
    if number is None:
        problem = f"{show(value)} is not a number, so it cannot be checked against {kind} {bound}"
        return [Issue(check.argument, kind, problem, check.message or "send a number")]
    ref = reference(bound) if isinstance(bound, str) else None
    if ref is None:
        limit = as_decimal(literal(bound))
        if limit is None:
            raise PolicyError(f"tools.{scope.owner}: {kind}={bound!r} is not a number")
    else:
        target = scope.resolve(ref)
        if target is MISSING or (target is None and not scope.is_lookup(ref)):
            return []  # compared with an optional argument the call did not send
        limit = as_decimal(target)
        if limit is None:
            problem = f"cannot be checked: ${ref} is {show(target)}, not a number"
            return [Issue(check.argument, kind, problem, check.message or "look it up again")]
    if (number >= limit) if kind == "min" else (number <= limit):
        return []
    word, fix = _WORDS[kind]
    shown = plain(limit) + (f" (${ref})" if ref else "")
    problem = f"{show(value)} {word} {shown}"
    return [Issue(check.argument, kind, problem, check.message or fix.format(plain(limit)))]


def _date_issue(check: Check, value: Any, spec: str, kind: str, scope: _Scope) -> list[Issue]:
    fix = check.message
    ref = reference(spec)
    if ref is None:
        limit, source = _fixed_date(spec, scope, kind)
    else:
        target = scope.resolve(ref)
        if target is MISSING or (target is None and not scope.is_lookup(ref)):
            return []  # compared with an optional argument the call did not send
        found = parse_day(target)
        if found is None:
            problem = f"cannot be checked: ${ref} is {show(target)}, not a date"
            return [Issue(check.argument, kind, problem, fix or "look it up again")]
        limit, source = found, f"${ref}"
    if value is None:
        problem = "is not set, so it cannot be checked against a date"
        return [Issue(check.argument, kind, problem, fix or "use one whose date is set")]
    day = parse_day(value)
    if day is None:
        problem = f"expected an ISO date (YYYY-MM-DD), got {show(value)}"
        return [Issue(check.argument, kind, problem, fix or "send a date like 2026-01-31")]
    if (day >= limit) if kind == "min_date" else (day <= limit):
        return []
    word, default = _WORDS[kind]
    problem = f"{day.isoformat()} {word} {limit.isoformat()} ({source})"
    return [Issue(check.argument, kind, problem, fix or default.format(limit.isoformat()))]


def _fixed_date(spec: str, scope: _Scope, kind: str) -> tuple[date, str]:
    """(limit, how it was given) for an ISO date or an offset from ``now``."""
    match = RELATIVE_DATE.match(spec.strip())
    if match:
        days = int(match.group(2)) * (1 if match.group(1) == "+" else -1)
        return (scope.now + timedelta(days=days)).date(), f"{spec} from {scope.now.date()}"
    day = parse_day(spec)
    if day is None:
        raise PolicyError(
            f"tools.{scope.owner}: {kind}={spec!r} is not an ISO date or an offset like -30d"
        )
    return day, spec
