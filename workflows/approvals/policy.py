"""Approval policy: which calls wait for a human, and who may decide (pure functions).

The decisions themselves are collected by the run's ``ApprovalDesk`` (workflows/approvals/desk.py).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from keel.contracts import (
    ApprovalRule,
    ApprovalSettings,
    Reversibility,
    ServerSettings,
    ToolPolicy,
    ToolSpec,
)


def reversibility(
    tool: ToolSpec, server: ServerSettings, policy: ToolPolicy | None
) -> Reversibility:
    """The tool's class: the profile's word first, then annotations (trusted servers only).

    An untrusted server's annotations are believed only for ``readOnlyHint``: anything not
    marked read-only there is irreversible. On a trusted server, a tool that is neither
    destructive nor open-world (it only adds to its own data) is reversible.
    """
    if policy is not None and policy.reversibility is not None:
        return policy.reversibility
    hints = tool.annotations
    if hints.get("read_only_hint") is True:
        return "read"
    if (
        server.trusted
        and hints.get("destructive_hint") is False
        and hints.get("open_world_hint") is False
    ):
        return "reversible"
    return "irreversible"


def _above(value: Any, threshold: float) -> bool:
    try:
        return Decimal(str(value)) > Decimal(str(threshold))
    except (InvalidOperation, ValueError):
        return True  # a value that cannot be compared is not waved through


def needs_approval(kind: Reversibility, rule: ApprovalRule, arguments: dict[str, Any]) -> bool:
    """Irreversible calls wait (``auto``), unless the rule says otherwise or its ``when``
    conditions (any of them) do not hold."""
    if rule.required == "never":
        return False
    if rule.required == "auto" and kind != "irreversible":
        return False
    if rule.when:
        return any(
            c.argument in arguments and _above(arguments[c.argument], c.above) for c in rule.when
        )
    return True


def approver_roles(policy: ToolPolicy | None, settings: ApprovalSettings) -> list[str]:
    if policy is not None and policy.approval.approver_roles is not None:
        return list(policy.approval.approver_roles)
    return list(settings.approver_roles)


def approval_id(step: int, tool_call_id: str) -> str:
    """The id of a request in a run recorded before decisions were bound to digests (newer
    runs draw a random one: workflows/approvals/wait.py)."""
    return f"apr-{step}-{tool_call_id}"
