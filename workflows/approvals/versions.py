"""Which approval rules a run follows: the workflow-versioning patch of bound decisions.

Runs recorded before it took the old path and must replay on it (tests/replay): predictable
approval ids, no digest, a decision kept until its request opens, a refused edit closing the
request, "executed" for any approved call that returned, and an update left waiting when the
run ended. A new run records the patch marker when it first needs to know (its first approval
request, or a decision that arrives before any), and follows the new rules from then on.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.approvals.desk import ApprovalDesk

BOUND_DECISIONS = "keel-bound-decisions"
# A profile that requires identity loads the approver keys at the run's start (an activity:
# workflows/approvals/identity.py). Runs recorded before it never required identity.
APPROVER_IDENTITY = "keel-approver-identity-v1"


def bound(desk: ApprovalDesk) -> bool:
    """True when this run's decisions are bound to the request (id and digest). Not for
    queries or update validators (read-only): they read ``desk.bound`` or the request."""
    if desk.bound is None:
        desk.bound = workflow.patched(BOUND_DECISIONS)
    return desk.bound
