"""The approval desk: one run's pending requests, accepted decisions and audit trail.

Workflow state behind the ``pending_approvals`` query and the ``decide`` signal and update.
Decisions are checked the same way on both paths. A decision is bound to what its decider
read: it names the request (its id, not guessable) and the request's digest of exactly what
would run; one for a request that is not open, or for another digest, is refused.

Runs recorded before digests existed (``bound`` False, see workflows/approvals/versions.py)
keep their rules: predictable ids, no digest, and a decision that arrived before its request
(``early``) applied when the request is created.

A run whose profile requires identity (``identity_required``) accepts decisions signed by an
approver (workflows/approvals/identity.py, verified before ``check``); the desk keeps the
approver keys and each accepted decision's verified identity for the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from keel.contracts import ApprovalRequest, ApproverIdentity, ApproverKeys, Decision, DecisionRecord


class DecisionError(ValueError):
    """A decision that cannot be accepted; the message says why (shown to the decider)."""


@dataclass
class ApprovalDesk:
    """Pending requests, accepted decisions and the audit trail of one run."""

    pending: dict[str, ApprovalRequest] = field(default_factory=dict)
    accepted: dict[str, Decision] = field(default_factory=dict)
    early: dict[str, Decision] = field(default_factory=dict)  # unbound runs only
    closed: dict[str, str] = field(default_factory=dict)  # approval id -> final outcome
    audit: list[DecisionRecord] = field(default_factory=list)
    bound: bool | None = None  # decisions bound to digests; None until first asked
    serials: dict[str, int] = field(default_factory=dict)  # approval id -> accepted decision
    refused_edits: dict[int, str] = field(default_factory=dict)  # serial -> why
    ended: tuple[str, str] | None = None  # (how, why) once the run has ended
    identity_required: bool = False  # approvals.require_identity (set at the run's start)
    approver_keys: ApproverKeys | None = None
    identities: dict[str, ApproverIdentity] = field(default_factory=dict)  # accepted deciders
    reloaded_kids: set[str] = field(default_factory=set)  # unknown kids the keys reloaded for
    warned_unsigned: bool = False  # the warning that decisions are unsigned was logged
    next_serial: int = 0

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
        request = self._open_request(decision.approval_id)
        _check_digest(request, decision)
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

    def _open_request(self, approval_id: str) -> ApprovalRequest:
        request = self.pending.get(approval_id)
        if request is not None:
            return request
        if approval_id in self.closed:
            raise DecisionError(f"approval {approval_id!r} is closed: {self.closed[approval_id]}")
        known = ", ".join(sorted(self.pending)) or "none"
        raise DecisionError(
            f"approval {approval_id!r} is not pending in this run (pending: {known})"
        )

    def accept(self, decision: Decision, identity: ApproverIdentity | None = None) -> int:
        """Accept ``decision`` (made by the verified ``identity``, when the run requires one);
        returns its serial (how an update waits for what became of it)."""
        if identity is not None:
            self.identities[decision.approval_id] = identity
        self.next_serial += 1
        self.accepted[decision.approval_id] = decision
        self.serials[decision.approval_id] = self.next_serial
        return self.next_serial

    def serial(self, approval_id: str) -> int:
        return self.serials[approval_id]

    def refuse(
        self, decision: Decision, why: str, now: datetime, request: ApprovalRequest | None = None,
        identity: ApproverIdentity | None = None,
    ) -> None:  # fmt: skip
        """Record a decision that could not be accepted or carried out (audit only): ``by`` is
        what it claimed, ``identity`` who its token (if it verified) says made it."""
        self.audit.append(
            DecisionRecord(
                approval_id=decision.approval_id,
                tool=request.tool if request is not None else "",
                decision="refused",
                by=decision.by,
                at=now,
                reason=decision.reason,
                arguments=decision.arguments,
                outcome=why,
                digest=decision.digest,
                requested_at=request.created_at if request is not None else None,
                step=request.step if request is not None else None,
                identity=identity,
            )
        )

    def refuse_edit(
        self, request: ApprovalRequest, decision: Decision, why: str, now: datetime
    ) -> None:
        """An accepted edit whose arguments the checks refused: audited with the edited
        arguments, withdrawn, and the request stays open for another decision."""
        self.refuse(decision, why, now, request, self.identities.pop(request.approval_id, None))
        self.accepted.pop(request.approval_id, None)
        serial = self.serials.pop(request.approval_id, None)
        if serial is not None:
            self.refused_edits[serial] = why

    def close(self, request: ApprovalRequest, record: DecisionRecord) -> None:
        """Close ``request`` with ``record`` (which gets the decider's verified identity)."""
        self.pending.pop(request.approval_id, None)
        self.closed[request.approval_id] = record.outcome
        identity = self.identities.get(request.approval_id)
        if identity is not None and record.decision != "timeout":
            record = record.model_copy(update={"identity": identity})
        self.audit.append(record)

    def end(self, how: str, why: str, now: datetime) -> None:
        """The run ended: accepted decisions not carried out to the end are audited as such
        (an update waiting for one answers with this)."""
        self.ended = (how, why)
        for approval_id, decision in self.accepted.items():
            request = self.pending.get(approval_id)
            if request is None:
                continue
            record = DecisionRecord(
                approval_id=approval_id, tool=request.tool, decision=decision.decision,
                by=decision.by, at=now, reason=decision.reason,
                arguments=decision.arguments or request.arguments,
                outcome=f"run {how} before this decision was carried out: {why}",
                digest=decision.digest, requested_at=request.created_at, step=request.step,
                identity=self.identities.get(approval_id),
            )  # fmt: skip
            self.audit.append(record)


def _check_digest(request: ApprovalRequest, decision: Decision) -> None:
    if request.digest is None:  # a request of a run recorded before digests
        return
    if decision.digest is None:
        raise DecisionError(
            f"a decision must name the digest of approval {request.approval_id!r}"
            f" ({request.digest}): read the request first (pending_approvals)"
        )
    if decision.digest != request.digest:
        raise DecisionError(
            f"digest {decision.digest} does not match approval {request.approval_id!r}"
            f" ({request.digest}): the decision is for something else; read the request again"
        )


def _same(a: Decision, b: Decision) -> bool:
    return (a.decision, a.arguments, a.digest) == (b.decision, b.arguments, b.digest)
