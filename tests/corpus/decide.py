"""The corpus's one way of deciding an approval request (approve, reject, edit).

Every decision of every case goes through :func:`decide`, so a change of the ``decide``
payload (an argument digest, random approval ids) changes this module only. ``arguments``
are the arguments the decider *means*: an edit's new arguments, or — for an approve — what
the decider believes the request asks (a decision for request A's id with request B's
arguments must not run A).
"""

from __future__ import annotations

from typing import Any

from temporalio.client import (
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.service import RPCError

from keel.contracts import ApprovalRequest, Decision, DecisionOutcome, approval_digest

BY = "corpus-decider"


def payload(
    request: ApprovalRequest | str,
    kind: str,
    *,
    arguments: dict[str, Any] | None,
    reason: str | None,
    roles: tuple[str, ...],
) -> Decision:
    """The ``decide`` payload: approval id, the digest of what the decider means, decision.

    ``request`` is the pending request the decider read, or only an id (an unknown or guessed
    one: no digest can be named, so the id's own text stands in). An approve or reject names
    the digest of the request's tool with ``arguments`` if given (what the decider believes
    the request asks), else with the request's own arguments; an edit names the request's own
    digest (it changes what it read) and carries the new arguments.
    """
    if kind == "reject" and reason is None:
        reason = "the corpus does not approve this"
    digest: str | None
    if isinstance(request, str):
        approval_id, digest = request, approval_digest("unknown", "unknown", {"id": request})
    else:
        approval_id = request.approval_id
        digest = request.digest
        if kind != "edit" and arguments is not None and arguments != request.arguments:
            digest = approval_digest(request.server, request.tool, arguments)
    return Decision(
        approval_id=approval_id,
        digest=digest,
        decision=kind,  # type: ignore[arg-type]
        arguments=arguments if kind == "edit" else None,
        reason=reason,
        by=BY,
        roles=list(roles),
    )


async def decide(
    handle: WorkflowHandle[Any, Any],
    request: ApprovalRequest | str,
    kind: str,
    *,
    arguments: dict[str, Any] | None = None,
    reason: str | None = None,
    roles: tuple[str, ...] = ("supervisor",),
    via: str = "update",
) -> tuple[bool, str]:
    """Send one decision; (accepted, what the run said). A signal is accepted unseen."""
    decision = payload(request, kind, arguments=arguments, reason=reason, roles=roles)
    if via == "signal":
        await handle.signal("decide", decision)
        return True, "signalled"
    try:
        update = await handle.start_update(
            "decide", decision, wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            result_type=DecisionOutcome,
        )  # fmt: skip
        outcome = await update.result()  # polls until the decision is carried out
    except WorkflowUpdateFailedError as exc:
        return False, str(getattr(exc.cause, "message", None) or exc.cause)
    except RPCError as exc:
        return False, f"rpc: {exc.message}"
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        return False, "no answer to the update in time"
    return outcome.accepted, outcome.status
