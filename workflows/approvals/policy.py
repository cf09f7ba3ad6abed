"""Approval policy: which calls wait for a human, and who may decide (pure functions).

The decisions themselves are collected by the run's ``ApprovalDesk`` (workflows/approvals/desk.py).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from keel.contracts import (
    ApprovalDefault,
    ApprovalRule,
    ApprovalSettings,
    Reversibility,
    ServerSettings,
    ToolPolicy,
    ToolSpec,
)
from workflows.tools.trust import tool_class


def reversibility(
    tool: ToolSpec, server: ServerSettings, policy: ToolPolicy | None
) -> Reversibility:
    """The tool's class: the profile's word first, then the annotations Keel believes
    (workflows/tools/trust.py: a trusted server's, or an untrusted one's read-only hints when
    the profile sets its ``approval = "writes"``); anything else is irreversible."""
    return tool_class(tool, server, policy)


def _above(value: Any, threshold: float) -> bool:
    try:
        return Decimal(str(value)) > Decimal(str(threshold))
    except (InvalidOperation, ValueError):
        return True  # a value that cannot be compared is not waved through


def needs_approval(
    kind: Reversibility,
    rule: ApprovalRule,
    arguments: dict[str, Any],
    default: ApprovalDefault = "writes",
    declared: Reversibility | None = None,
) -> bool:
    """Whether a call waits for a human: the tool's rule, else the server's default.

    ``auto`` follows the server's ``default``: ``writes`` — irreversible calls wait; ``all`` —
    every call waits unless the profile declares the tool ``read`` or ``reversible``
    (``declared``); ``none`` — nothing waits. ``always`` / ``never`` override it. ``when``
    narrows a waiting call: approval only if any condition holds.
    """
    if rule.required == "never":
        return False
    if rule.required == "auto" and not _waits_by_default(kind, default, declared):
        return False
    if rule.when:
        return any(
            c.argument in arguments and _above(arguments[c.argument], c.above) for c in rule.when
        )
    return True


def _waits_by_default(
    kind: Reversibility, default: ApprovalDefault, declared: Reversibility | None
) -> bool:
    if default == "none":
        return False
    if default == "all":
        return declared not in ("read", "reversible")
    return kind == "irreversible"


def call_needs_approval(
    tool: ToolSpec, server: ServerSettings, policy: ToolPolicy | None, arguments: dict[str, Any]
) -> tuple[Reversibility, bool]:
    """A call's class, and whether it waits for a human decision."""
    kind = reversibility(tool, server, policy)
    rule = policy.approval if policy is not None else ApprovalRule()
    declared = policy.reversibility if policy is not None else None
    return kind, needs_approval(kind, rule, arguments, server.approval_default, declared)


def approver_roles(policy: ToolPolicy | None, settings: ApprovalSettings) -> list[str]:
    if policy is not None and policy.approval.approver_roles is not None:
        return list(policy.approval.approver_roles)
    return list(settings.approver_roles)


def approval_id(step: int, tool_call_id: str) -> str:
    """The id of a request in a run recorded before decisions were bound to digests (newer
    runs draw a random one: workflows/approvals/wait.py)."""
    return f"apr-{step}-{tool_call_id}"
