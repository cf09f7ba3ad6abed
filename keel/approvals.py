"""Finding tool calls that wait for a human, and delivering decisions (used by the CLI and tests).

Pending approvals live in the workflows themselves (the ``pending_approvals`` query), not in a
separate store: Temporal's visibility (``KeelState = 'awaiting_approval'``) says which runs to
ask, and each run answers for itself. Decisions go through the ``decide`` *update*, not the
signal, because a person at a terminal needs an answer: the update's validator refuses an
unknown or expired id, another digest, a decider without the required role or an invalid edit
*before* anything is recorded, and the accepted update answers with what came of the decision.

A decision names the request's digest (what exactly would run). ``decide`` sends the one the
caller read; given none, it reads the pending request first and sends that one — callers that
show the decider what is decided use ``pending_request`` and ``bind`` themselves (the CLI does).

A run whose profile requires identity (``ApprovalRequest.identity_required``) accepts only
decisions carrying the decider's identity token (``identity_token=``; docs/security.md): the
run takes the decider's name and roles from it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from keel.client import human_update, rpc_error
from keel.contracts import ApprovalRequest, Decision, DecisionOutcome
from keel.contracts.errors import InputError, KeelError
from keel.contracts.names import QUERY_PENDING_APPROVALS, RUNS_QUERY, SA_STATE, UPDATE_DECIDE

AWAITING_QUERY = (
    f"{RUNS_QUERY} AND ExecutionStatus = 'Running' AND {SA_STATE} = 'awaiting_approval'"
)
"""Running is part of the query: a run terminated while waiting keeps its last KeelState."""

QUERY_TIMEOUT = timedelta(seconds=15)
"""A query needs a worker; without one it would hang, so ask for a bounded answer."""

MAX_CONCURRENT_QUERIES = 16


async def list_pending(client: Client) -> list[ApprovalRequest]:
    """Every pending approval of every run waiting for a human, oldest first.

    Visibility is eventually consistent: a run may have been decided (or finished) between
    the list and its query. Such a run answers with nothing pending, or is gone; both are
    skipped silently, since "nothing to decide there" is the truth by then.
    """
    try:
        ids = [execution.id async for execution in client.list_workflows(AWAITING_QUERY)]
    except RPCError as exc:
        raise KeelError(f"cannot list runs awaiting approval: {exc.message}") from None
    limit = asyncio.Semaphore(MAX_CONCURRENT_QUERIES)

    async def pending_of(workflow_id: str) -> list[ApprovalRequest]:
        async with limit:
            return await _query_pending(client, workflow_id)

    found = await asyncio.gather(*(pending_of(workflow_id) for workflow_id in ids))
    requests = [request for run in found for request in run]
    return sorted(requests, key=lambda r: (r.created_at, r.workflow_id, r.approval_id))


async def _query_pending(
    client: Client, workflow_id: str, *, gone_ok: bool = True
) -> list[ApprovalRequest]:
    handle = client.get_workflow_handle(workflow_id)
    try:
        requests: list[ApprovalRequest] = await handle.query(
            QUERY_PENDING_APPROVALS, result_type=list[ApprovalRequest], rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            if not gone_ok:
                raise rpc_error(exc, workflow_id, "decision") from None
            return []  # finished and gone between the list and the query
        if exc.status == RPCStatusCode.DEADLINE_EXCEEDED:
            raise KeelError(
                f"run {workflow_id} did not answer within {QUERY_TIMEOUT.seconds}s"
                " (is a worker polling the task queue?)"
            ) from None
        raise KeelError(f"cannot query run {workflow_id}: {exc.message}") from None
    except WorkflowQueryFailedError as exc:
        raise KeelError(f"run {workflow_id} cannot list its approvals: {exc.message}") from None
    return requests


async def pending_request(client: Client, workflow_id: str, approval_id: str) -> ApprovalRequest:
    """The request ``approval_id`` of run ``workflow_id``, as the run shows it now; an
    ``InputError`` when the run has no such request open."""
    requests = await _query_pending(client, workflow_id, gone_ok=False)
    for request in requests:
        if request.approval_id == approval_id:
            return request
    known = ", ".join(r.approval_id for r in requests) or "none"
    raise InputError(
        f"approval {approval_id} is not pending in run {workflow_id} (pending: {known})"
    )


def bind(decision: Decision, request: ApprovalRequest) -> Decision:
    """``decision`` naming ``request``'s digest: it decides exactly what the request shows."""
    return decision.model_copy(update={"approval_id": request.approval_id,
                                       "digest": request.digest})  # fmt: skip


async def decide(
    client: Client, workflow_id: str, decision: Decision, *, identity_token: str | None = None
) -> DecisionOutcome:
    """Deliver ``decision`` to run ``workflow_id`` and wait for what came of it.

    Without a ``digest`` the pending request is read first and its digest sent.
    ``identity_token`` (a JWT from the approvers' issuer) signs the decision, for runs that
    require identity. A refusal (wrong id or digest, missing role, invalid edit — also an
    edit the checks refuse once carried out: the request then stays open — or a missing, bad
    or contradicted identity token) is the decider's mistake and becomes an ``InputError``
    carrying the workflow's own explanation.
    """
    if identity_token is not None:
        decision = decision.model_copy(update={"identity_token": identity_token})
    if decision.digest is None:
        decision = bind(decision, await pending_request(client, workflow_id, decision.approval_id))
    return await human_update(
        client, workflow_id, UPDATE_DECIDE, decision, DecisionOutcome, "decision"
    )


def edited_arguments(text: str) -> dict[str, object]:
    """Parse ``--arguments`` before anything is contacted: a typo must cost nothing."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--arguments is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError(
            f"--arguments must be a JSON object (the tool's arguments), got {type(value).__name__}"
        )
    return value
