"""Approval policy (pure): reversibility classes, when a call waits, and the decision desk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keel.contracts import (
    ApprovalCondition,
    ApprovalRequest,
    ApprovalRule,
    ApprovalSettings,
    Decision,
    Principal,
    ServerSettings,
    ToolPolicy,
    ToolSpec,
)
from workflows.approvals.desk import ApprovalDesk, DecisionError
from workflows.approvals.policy import (
    approver_roles,
    needs_approval,
    reversibility,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TRUSTED = ServerSettings(name="desk", trusted=True)
UNTRUSTED = ServerSettings(name="desk")


def tool(**hints: Any) -> ToolSpec:
    return ToolSpec(server="desk", name="t", annotations=hints)


@pytest.mark.parametrize(
    ("hints", "trusted", "untrusted"),
    [
        ({"read_only_hint": True}, "read", "irreversible"),  # an untrusted server's word
        ({"read_only_hint": False, "destructive_hint": True}, "irreversible", "irreversible"),
        (
            {"read_only_hint": False, "destructive_hint": False, "open_world_hint": False},
            "reversible",
            "irreversible",
        ),
        (
            {"read_only_hint": False, "destructive_hint": False, "open_world_hint": True},
            "irreversible",
            "irreversible",
        ),
        ({}, "irreversible", "irreversible"),  # MCP defaults: destructive, open world
    ],
)
def test_reversibility_from_annotations(
    hints: dict[str, Any], trusted: str, untrusted: str
) -> None:
    assert reversibility(tool(**hints), TRUSTED, None) == trusted
    assert reversibility(tool(**hints), UNTRUSTED, None) == untrusted


def test_profile_overrides_annotations() -> None:
    policy = ToolPolicy(reversibility="reversible")
    assert reversibility(tool(destructive_hint=True), UNTRUSTED, policy) == "reversible"


@pytest.mark.parametrize(
    ("kind", "rule", "arguments", "expected"),
    [
        ("irreversible", ApprovalRule(), {}, True),
        ("reversible", ApprovalRule(), {}, False),
        ("read", ApprovalRule(required="always"), {}, True),
        ("irreversible", ApprovalRule(required="never"), {}, False),
        (
            "irreversible",
            ApprovalRule(when=[ApprovalCondition(argument="amount", above=50)]),
            {"amount": 50.0},
            False,
        ),
        (
            "irreversible",
            ApprovalRule(when=[ApprovalCondition(argument="amount", above=50)]),
            {"amount": 50.01},
            True,
        ),
        (
            "irreversible",
            ApprovalRule(when=[ApprovalCondition(argument="amount", above=50)]),
            {"amount": "a lot"},
            True,
        ),
    ],
)
def test_needs_approval(
    kind: Any, rule: ApprovalRule, arguments: dict[str, Any], expected: bool
) -> None:
    assert needs_approval(kind, rule, arguments) is expected


def test_approver_roles_tool_rule_wins_over_profile() -> None:
    settings = ApprovalSettings(approver_roles=["lead"])
    assert approver_roles(None, settings) == ["lead"]
    assert approver_roles(ToolPolicy(approval=ApprovalRule(approver_roles=["cfo"])), settings) == [
        "cfo"
    ]
    assert approver_roles(ToolPolicy(approval=ApprovalRule(approver_roles=[])), settings) == []


def request(**overrides: Any) -> ApprovalRequest:
    fields: dict[str, Any] = dict(
        approval_id="apr-1-c", workflow_id="wf", step=1, tool_call_id="c", tool="refund_order",
        server="desk", arguments={"amount": 1}, principal=Principal(id="p"),
        reversibility="irreversible", approver_roles=["supervisor"], created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
    )  # fmt: skip
    fields.update(overrides)
    return ApprovalRequest(**fields)


def decision(**overrides: Any) -> Decision:
    fields: dict[str, Any] = {"approval_id": "apr-1-c", "decision": "approve", "by": "a",
                              "roles": ["supervisor"]}  # fmt: skip
    fields.update(overrides)
    return Decision(**fields)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"approval_id": "apr-2-x"}, "is not pending"),
        ({"roles": ["agent"]}, "needs one of the roles supervisor"),
        ({"decision": "edit"}, "needs the edited 'arguments'"),
        ({"decision": "reject"}, "needs a 'reason'"),
    ],
)
def test_desk_refuses_bad_decisions(change: dict[str, Any], message: str) -> None:
    desk = ApprovalDesk()
    desk.open(request())
    with pytest.raises(DecisionError, match=message):
        desk.check(decision(**change), NOW)


def test_desk_refuses_expired_requests_and_final_decisions() -> None:
    desk = ApprovalDesk()
    desk.open(request())
    with pytest.raises(DecisionError, match="expired"):
        desk.check(decision(), NOW + timedelta(hours=2))
    assert desk.check(decision(), NOW) is not None
    desk.accept(decision())
    assert desk.check(decision(), NOW) is None  # the same decision again: idempotent
    with pytest.raises(DecisionError, match="already decided"):
        desk.check(decision(decision="reject", reason="no"), NOW)
