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

from keel.contracts import ApprovalRequest, Decision, DecisionOutcome

BY = "corpus-decider"


def payload(
    request: ApprovalRequest | str,
    kind: str,
    *,
    arguments: dict[str, Any] | None,
    reason: str | None,
    roles: tuple[str, ...],
) -> Decision:
    """The ``decide`` payload of today's contract (approval id, decision, arguments).

    ``request`` is the pending request the decider read, or only an id (an unknown or guessed
    one). The arguments the decider means are ``arguments`` if given, else the request's own:
    that is what an argument digest would be computed from.
    """
    if kind == "reject" and reason is None:
        reason = "the corpus does not approve this"
    approval_id = request if isinstance(request, str) else request.approval_id
    return Decision(
        approval_id=approval_id,
        decision=kind,  # type: ignore[arg-type]
        arguments=arguments,
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
