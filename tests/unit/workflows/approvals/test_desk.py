"""The approval desk (pure): decisions bound to the request's id and digest, refused edits,
the end of the run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keel.contracts import ApprovalRequest, Decision, Principal, approval_digest
from workflows.approvals.desk import ApprovalDesk, DecisionError

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ARGUMENTS = {"order_id": "ORD-1", "amount": 20.0}
DIGEST = approval_digest("desk", "refund_order", ARGUMENTS)
OTHER = approval_digest("desk", "refund_order", {**ARGUMENTS, "amount": 99})


def request(**overrides: Any) -> ApprovalRequest:
    fields: dict[str, Any] = dict(
        approval_id="apr-0123456789abcdef0123", workflow_id="wf", step=1, tool_call_id="c",
        tool="refund_order", server="desk", arguments=ARGUMENTS, principal=Principal(id="p"),
        reversibility="irreversible", approver_roles=["supervisor"], created_at=NOW,
        expires_at=NOW + timedelta(hours=1), digest=DIGEST,
    )  # fmt: skip
    fields.update(overrides)
    return ApprovalRequest(**fields)


def decision(**overrides: Any) -> Decision:
    fields: dict[str, Any] = {
        "approval_id": "apr-0123456789abcdef0123", "digest": DIGEST, "decision": "approve",
        "by": "a", "roles": ["supervisor"],
    }  # fmt: skip
    fields.update(overrides)
    return Decision(**fields)


def open_desk(**overrides: Any) -> ApprovalDesk:
    desk = ApprovalDesk(bound=True)
    desk.open(request(**overrides))
    return desk


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"digest": None}, "must name the digest"),
        ({"digest": OTHER}, "does not match"),
        ({"approval_id": "apr-1-c"}, "is not pending"),
    ],
)
def test_a_decision_must_name_an_open_request_and_its_digest(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(DecisionError, match=message):
        open_desk().check(decision(**change), NOW)


def test_the_right_digest_is_accepted_and_a_repeat_must_name_it_too() -> None:
    desk = open_desk()
    assert desk.check(decision(), NOW) is not None
    desk.accept(decision())
    assert desk.check(decision(), NOW) is None  # idempotent repeat
    with pytest.raises(DecisionError, match="already decided"):
        desk.check(decision(digest="sha256:" + "0" * 64), NOW)


def test_requests_of_runs_recorded_before_digests_need_none() -> None:
    desk = open_desk(approval_id="apr-1-c", digest=None)
    assert desk.check(decision(approval_id="apr-1-c", digest=None), NOW) is not None


def test_a_refused_edit_is_audited_withdrawn_and_the_request_stays_open() -> None:
    desk = open_desk()
    edit = decision(decision="edit", arguments={**ARGUMENTS, "amount": 5000.0}, by="bob")
    serial = desk.accept(edit)
    desk.refuse_edit(request(), edit, "edit refused: too much", NOW)
    assert desk.refused_edits == {serial: "edit refused: too much"}
    assert "apr-0123456789abcdef0123" in desk.pending and not desk.accepted
    [record] = desk.audit
    assert (record.decision, record.by, record.outcome) == ("refused", "bob",
                                                            "edit refused: too much")  # fmt: skip
    assert record.arguments == {**ARGUMENTS, "amount": 5000.0}
    assert (record.tool, record.step, record.digest) == ("refund_order", 1, DIGEST)
    assert desk.check(decision(), NOW) is not None  # a new decision may follow
    assert desk.accept(decision()) != serial


def test_the_end_of_the_run_audits_accepted_decisions_not_carried_out() -> None:
    desk = open_desk()
    desk.accept(decision())
    desk.end("failed", "tool 'refund_order' timed out", NOW)
    assert desk.ended == ("failed", "tool 'refund_order' timed out")
    [record] = desk.audit
    assert (record.decision, record.arguments) == ("approve", ARGUMENTS)
    assert record.outcome == (
        "run failed before this decision was carried out: tool 'refund_order' timed out"
    )
