"""The approval desk: one run's pending requests, accepted decisions and audit trail.

Workflow state behind the ``pending_approvals`` query and the ``decide`` signal and update.
Decisions are checked the same way on both paths; one that arrives before its request exists
(the approval id is predictable) is kept and applied when the request is created, so no
decision is ever lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from keel.contracts import ApprovalRequest, Decision, DecisionRecord


class DecisionError(ValueError):
    """A decision that cannot be accepted; the message says why (shown to the decider)."""


@dataclass
class ApprovalDesk:
    """Pending requests, accepted decisions and the audit trail of one run."""

    pending: dict[str, ApprovalRequest] = field(default_factory=dict)
    accepted: dict[str, Decision] = field(default_factory=dict)
    early: dict[str, Decision] = field(default_factory=dict)
    closed: dict[str, str] = field(default_factory=dict)  # approval id -> final outcome
    audit: list[DecisionRecord] = field(default_factory=list)

    def open(self, request: ApprovalRequest) -> None:
        self.pending[request.approval_id] = request

    def check(self, decision: Decision, now: datetime) -> ApprovalRequest | None:
        """Raise DecisionError if ``decision`` cannot be accepted now.

        Returns the request it decides, or None for a repeat of an accepted decision (which
        is idempotent: accepted again, changes nothing).
        """
        earlier = self.accepted.get(decision.approval_id)
        if earlier is not None:
            if _same(earlier, decision):
                return None
            raise DecisionError(
                f"approval {decision.approval_id!r} was already decided"
                f" ({earlier.decision} by {earlier.by or 'unknown'}); a decision is final"
            )
        request = self.pending.get(decision.approval_id)
        if request is None:
            if decision.approval_id in self.closed:
                raise DecisionError(
                    f"approval {decision.approval_id!r} is closed:"
                    f" {self.closed[decision.approval_id]}"
                )
            known = ", ".join(sorted(self.pending)) or "none"
            raise DecisionError(
                f"approval {decision.approval_id!r} is not pending in this run (pending: {known})"
            )
        if now > request.expires_at and not request.escalated:
            raise DecisionError(
                f"approval {decision.approval_id!r} expired at {request.expires_at}"
            )
        if request.approver_roles and not set(decision.roles) & set(request.approver_roles):
            raise DecisionError(
                f"{decision.by or 'the decider'} (roles: {', '.join(decision.roles) or 'none'})"
                f" may not decide {request.tool}: it needs one of the roles"
                f" {', '.join(request.approver_roles)}"
            )
        if decision.decision == "edit" and decision.arguments is None:
            raise DecisionError("an 'edit' decision needs the edited 'arguments'")
        if decision.decision == "reject" and not (decision.reason or "").strip():
            raise DecisionError("a 'reject' decision needs a 'reason' (the model is told why)")
        return request

    def accept(self, decision: Decision) -> None:
        self.accepted[decision.approval_id] = decision

    def refuse(self, decision: Decision, why: str, now: datetime, tool: str = "") -> None:
        """Record a decision that arrived by signal but could not be accepted (audit only)."""
        self.audit.append(
            DecisionRecord(
                approval_id=decision.approval_id,
                tool=tool,
                decision="refused",
                by=decision.by,
                at=now,
                reason=decision.reason,
                arguments=decision.arguments,
                outcome=why,
            )
        )

    def close(self, request: ApprovalRequest, record: DecisionRecord) -> None:
        self.pending.pop(request.approval_id, None)
        self.closed[request.approval_id] = record.outcome
        self.audit.append(record)


def _same(a: Decision, b: Decision) -> bool:
    return (a.decision, a.arguments) == (b.decision, b.arguments)
