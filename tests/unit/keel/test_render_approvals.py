"""Terminal rendering of approvals: what a decider reads, and what a decision decided."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keel.contracts import ApprovalRequest, Decision, DecisionOutcome, Principal, approval_digest
from keel.render import approval_lines, deciding_line, decision_line, unsigned_warning

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ARGUMENTS = {"order_id": "ORD-1042", "amount": 20.0}
DIGEST = approval_digest("support_desk", "refund_order", ARGUMENTS)
REQUEST = ApprovalRequest(
    approval_id="apr-0123456789abcdef0123", workflow_id="run-1", step=1, tool_call_id="c",
    tool="refund_order", server="support_desk", arguments=ARGUMENTS,
    principal=Principal(id="p"), reversibility="irreversible", created_at=NOW,
    expires_at=NOW + timedelta(hours=1), digest=DIGEST,
)  # fmt: skip


def test_the_pending_table_shows_each_request_digest() -> None:
    text = approval_lines([REQUEST], now=NOW)
    assert f"    digest     {DIGEST}" in text
    assert "--digest DIGEST" in text


def test_the_deciding_line_names_server_tool_arguments_and_digest() -> None:
    assert deciding_line(REQUEST) == (
        "deciding apr-0123456789abcdef0123: support_desk.refund_order"
        f' {{"order_id":"ORD-1042","amount":20.0}} (digest {DIGEST})'
    )


def test_a_decision_on_a_run_that_ended_says_how() -> None:
    decision = Decision(approval_id=REQUEST.approval_id, digest=DIGEST, decision="approve")
    outcome = DecisionOutcome(approval_id=REQUEST.approval_id, accepted=True, status="run failed",
                              message="tool 'refund_order' timed out", run_ended=True)  # fmt: skip
    assert decision_line(decision, "run-1", outcome) == (
        "approved: apr-0123456789abcdef0123 in run run-1: run failed"
        " (tool 'refund_order' timed out)"
    )


def test_requests_that_accept_unsigned_decisions_are_flagged_in_one_line() -> None:
    signed = REQUEST.model_copy(update={"identity_required": True})
    assert unsigned_warning([signed]) is None
    warning = unsigned_warning([signed, REQUEST])
    assert warning is not None and "\n" not in warning
    assert warning.startswith("warning: 1 of 2 request(s) accept unsigned decisions")
    assert "approvals.require_identity" in warning
