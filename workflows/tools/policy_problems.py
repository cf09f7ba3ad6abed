"""Mistakes in a profile's tool policies that can be found before any call (run start).

A typo in a policy's tool name would silently drop its roles; a lookup of a missing or writing
tool, or a reference to an argument or lookup that does not exist, would fail mid-run. These
checks find all of them at once, when the run starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keel.contracts import Check, ToolPolicy, ToolSpec
from keel.contracts.errors import closest
from workflows.tools.references import RELATIVE_DATE, as_decimal, literal, parse_day, reference
from workflows.tools.semantics import PolicyError, lookup_tool


def policy_problems(
    owner: str,
    policy: ToolPolicy,
    catalog_all: list[ToolSpec],
    is_read: Callable[[ToolSpec], bool] | None = None,
) -> list[str]:
    """Mistakes in one tool's policy that can be found before any call (for a run's start)."""
    tools = [t for t in catalog_all if t.name == owner]
    if not tools:
        hints = closest(owner, [t.name for t in catalog_all])
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        return [f"tools.{owner}: no such tool on the run's servers{hint}"]
    review = _Review(owner, policy, tools[0].input_schema.get("properties"))
    review.lookups(catalog_all, is_read)
    review.checks()
    return review.problems


class _Review:
    """The problems found in one policy, in the order a reader meets them."""

    def __init__(self, owner: str, policy: ToolPolicy, properties: Any) -> None:
        self.owner = owner
        self.policy = policy
        self.properties = properties
        self.names = {lookup.name for lookup in policy.lookups}
        self.problems: list[str] = []

    def known(self, ref: str, where: str, lookups_too: bool = True) -> None:
        """``$ref`` must name an argument of the tool (or, where allowed, a lookup)."""
        head = ref.partition(".")[0]
        properties = self.properties
        if (lookups_too and head in self.names) or properties is None or head in properties:
            return
        choices = sorted(properties) + (sorted(self.names) if lookups_too else [])
        self.problems.append(
            f"{where}: ${ref} names no argument or lookup (have: {', '.join(choices)})"
        )

    def lookups(
        self, catalog_all: list[ToolSpec], is_read: Callable[[ToolSpec], bool] | None
    ) -> None:
        owner = self.owner
        for lookup in self.policy.lookups:
            where = f"tools.{owner}.lookups.{lookup.name}"
            try:
                lookup_tool(lookup, catalog_all, owner, is_read)
            except PolicyError as exc:
                self.problems.append(str(exc))
            if self.properties and lookup.name in self.properties:
                self.problems.append(
                    f"{where}: the name is also an argument of {owner}; rename the lookup"
                )
            for value in lookup.arguments.values():
                if (ref := reference(value)) is not None:
                    self.known(ref, where, lookups_too=False)
        if len(self.names) < len(self.policy.lookups):
            self.problems.append(f"tools.{owner}.lookups: names must be unique")

    def checks(self) -> None:
        for index, check in enumerate(self.policy.checks):
            where = f"tools.{self.owner}.checks[{index}]"
            self.problems.extend(f"{where}: {p}" for p in _check_problems(check, self.names))
            for value in (check.argument, check.min, check.max, check.min_date, check.max_date):
                ref = reference(value)
                if ref is not None:
                    self.known(ref, where)
            if reference(check.argument) is None:
                self.known(check.argument, where, lookups_too=False)


def _check_problems(check: Check, lookups: set[str]) -> list[str]:
    problems = []
    conditions = (check.exists, check.min, check.max, check.min_date, check.max_date)
    if all(c is None or c == "" for c in conditions):
        problems.append(f"the check on {check.argument!r} has no condition")
    if check.exists is not None and check.exists not in lookups:
        problems.append(f"exists={check.exists!r} names no lookup of this policy")
    for bound in (check.min, check.max):
        if isinstance(bound, str) and not reference(bound) and as_decimal(literal(bound)) is None:
            problems.append(f"{bound!r} is neither a number nor a $reference")
    for spec in (check.min_date, check.max_date):
        relative = spec and RELATIVE_DATE.match(spec.strip())
        if spec and not relative and not reference(spec) and parse_day(spec) is None:
            problems.append(f"{spec!r} is not an ISO date, an offset like -30d or a $reference")
    return problems
