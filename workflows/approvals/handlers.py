"""The human side of approvals: what the ``pending_approvals`` query, the ``decide`` signal
and the ``decide`` update do.

``AgentWorkflow`` declares the handlers (Temporal registers the methods of the workflow
class) and delegates each to an ``ApprovalHandlers`` it owns, which holds the run's desk, its
reporter and — once the tools are listed — its check pipeline: the same pipeline the turn and
the edit path use, so an edit the validator lets through is checked by the same rules.

A refusal on the update is a non-retryable ``DecisionRefused`` failure with the reason as its
message; on the signal it is written to the audit trail. An update is always answered: with
what came of the decision, with the refusal of an edit the checks turned down, or — when the
run ends first — with how it ended.

A run whose profile requires identity loads the approver keys at its start (:meth:`start`)
and verifies every decision's identity token first (workflows/approvals/identity.py). An
identity refusal — no token, a bad one, a false claim of name or role — is audited on both
paths: the update's validator lets it through, so the handler records it and fails the
update with ``DecisionRefused``. A token signed with a key the run does not know makes the
handler reload the keys (an activity, which a validator cannot run; at most once per unknown
key and ``MAX_KEY_RELOADS`` per run) and check again: a rotated issuer key is picked up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from keel.contracts import (
        DECISION_SERVER,
        ApprovalRequest,
        ApprovalSettings,
        ApproverIdentity,
        Decision,
        DecisionOutcome,
        ToolCall,
        names,
    )
    from workflows.approvals.desk import ApprovalDesk, DecisionError
    from workflows.approvals.identity import IdentityError, UnknownKey, authenticate, load_keys
    from workflows.approvals.versions import APPROVER_IDENTITY, bound
    from workflows.report.events import emit
    from workflows.report.reporter import Reporter
    from workflows.tools.check import CheckPipeline
    from workflows.tools.validation import Rejection


MAX_KEY_RELOADS = 3

Admitted = tuple[ApprovalRequest | None, Decision, ApproverIdentity | None]


class ApprovalHandlers:
    """Queries, signals and updates over one run's approval desk."""

    def __init__(self, desk: ApprovalDesk, reporter: Reporter) -> None:
        self._desk = desk
        self._reporter = reporter
        self.checks: CheckPipeline | None = None  # set once the run's tools are listed
        self._reloading: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, settings: ApprovalSettings) -> None:
        """At the run's start: a profile that requires identity loads the approver keys (a
        failure fails the run, config_error)."""
        if settings.require_identity and workflow.patched(APPROVER_IDENTITY):
            self._desk.identity_required = True
            self._desk.approver_keys = await load_keys()

    def idle(self) -> bool:
        """No key reload, and no decision waiting for one, is in flight (a safe point for
        continue-as-new: workflows/agent/continuation.py)."""
        return not self._tasks and (self._reloading is None or self._reloading.done())

    def pending(self) -> list[ApprovalRequest]:
        """Tool calls waiting for a human decision, oldest first."""
        return list(self._desk.pending.values())

    def signal(self, payload: Any) -> None:
        """A human decision (fire and forget). One that cannot be accepted — including one
        for a request that is not open (yet) — is recorded in the audit trail."""
        try:
            decision = Decision.model_validate(payload)
        except ValidationError as exc:
            emit("approval.signal_ignored", level=logging.WARNING, error=str(exc)[:500])
            return
        desk = self._desk
        known = (
            decision.approval_id in desk.pending
            or decision.approval_id in desk.accepted
            or decision.approval_id in desk.closed
        )
        if not known and not bound(desk):
            desk.early[decision.approval_id] = decision  # a run recorded before digests
            return
        self._signalled(decision, reloaded=False)

    def _signalled(self, decision: Decision, *, reloaded: bool) -> None:
        try:
            request, accepted, identity = self._admit(decision)
        except UnknownKey as exc:
            if reloaded or not self._may_reload(exc.kid):
                self._refuse(decision, exc)
            else:
                self._spawn(self._signalled_after_reload(decision, exc.kid))
            return
        except DecisionError as exc:
            self._refuse(decision, exc)
            return
        if request is not None:
            self._desk.accept(accepted, identity)

    async def _signalled_after_reload(self, decision: Decision, kid: str) -> None:
        await self._reload_keys(kid)
        self._signalled(decision, reloaded=True)

    async def update(self, decision: Decision) -> DecisionOutcome:
        """A human decision that answers: what came of it, or how the run ended first."""
        desk = self._desk
        try:
            request, accepted, identity = await self._admit_signed(decision)
        except DecisionError as exc:
            if isinstance(exc, IdentityError):
                self._refuse(decision, exc)  # the validator let it through to be audited
            raise refused(str(exc)) from None
        if request is not None:
            desk.accept(accepted, identity)
        approval = decision.approval_id
        serial = desk.serial(approval)
        await workflow.wait_condition(
            lambda: (
                approval in desk.closed or serial in desk.refused_edits or desk.ended is not None
            )
        )
        if approval in desk.closed:
            return DecisionOutcome(approval_id=approval, accepted=True,
                                   status=desk.closed[approval])  # fmt: skip
        if serial in desk.refused_edits:
            raise refused(desk.refused_edits[serial])
        assert desk.ended is not None
        how, why = desk.ended
        return DecisionOutcome(approval_id=approval, accepted=True, status=f"run {how}",
                               message=why, run_ended=True)  # fmt: skip

    def validate(self, decision: Decision) -> None:
        """Refuse before accepting: unknown, closed or expired request, another digest,
        missing role, invalid edit. An identity refusal is let through: the handler audits
        it (or, for an unknown signing key, reloads the keys first)."""
        try:
            self._admit(decision)
        except IdentityError:
            return
        except DecisionError as exc:
            raise refused(str(exc)) from None

    def _admit(self, decision: Decision, *, edit: bool = True) -> Admitted:
        """The checks of both paths: the identity token (when the run requires one), then
        the request (id, digest, expiry, roles), then an edit's schema. Returns the request
        (None: a repeat of an accepted decision), the decision as it is accepted, and the
        verified identity; raises ``DecisionError``."""
        now, identity = workflow.now(), None
        if self._desk.identity_required:
            decision, identity = authenticate(
                decision, self._desk.approver_keys, now, workflow.info().workflow_id
            )
        request = self._desk.check(decision, now)
        if edit:
            self._check_edit(decision, request)
        return request, decision, identity

    async def _admit_signed(self, decision: Decision) -> Admitted:
        """The update handler's checks (the validator ran the edit's), once more after
        reloading the keys when the token names an unknown one."""
        try:
            return self._admit(decision, edit=False)
        except UnknownKey as exc:
            if not self._may_reload(exc.kid):
                raise
            kid = exc.kid
        await self._reload_keys(kid)
        return self._admit(decision)

    def _may_reload(self, kid: str) -> bool:
        desk = self._desk
        if self._reloading is not None and not self._reloading.done():
            return True
        return kid not in desk.reloaded_kids and len(desk.reloaded_kids) < MAX_KEY_RELOADS

    async def _reload_keys(self, kid: str) -> None:
        """Load the approver keys again (once per unknown ``kid``; a reload in flight is
        joined). A failure keeps the keys the run has, and is logged."""
        if self._reloading is not None and not self._reloading.done():
            await self._reloading
        desk = self._desk
        known = desk.approver_keys is not None and any(
            str(k.get("kid") or "") == kid for k in desk.approver_keys.keys
        )
        if known or not self._may_reload(kid):
            return
        desk.reloaded_kids.add(kid)
        self._reloading = asyncio.ensure_future(self._load_keys_again())
        await self._reloading

    async def _load_keys_again(self) -> None:
        try:
            self._desk.approver_keys = await load_keys()
        except ApplicationError as exc:
            emit("approval.keys_reload_failed", level=logging.WARNING, error=exc.message[:500])

    def _refuse(self, decision: Decision, exc: DecisionError) -> None:
        """Audit a refused decision (with the verified identity, if its token verified)."""
        opened = self._desk.pending.get(decision.approval_id)
        identity = exc.identity if isinstance(exc, IdentityError) else None
        self._desk.refuse(decision, str(exc), workflow.now(), opened, identity)
        self._reporter.decision_refused(decision, str(exc), opened)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def run_ended(self, how: str, why: str | None) -> None:
        """The run is ending: ``how`` is its status (``completed``, ``halted``, ``failed``) or
        the failure class of a run that ends without a result (``cancelled``, anything else
        meaning failed). Updates still waiting are answered with it (runs recorded before
        digests: left waiting, as they were)."""
        if self._desk.bound:
            ended = how if how in ("completed", "halted", "failed", "cancelled") else "failed"
            self._desk.end(ended, why or ended, workflow.now())

    def _check_edit(self, decision: Decision, request: ApprovalRequest | None) -> None:
        """The schema layer of the run's pipeline, on an edit's arguments (a handler may not
        do I/O; the lookups and the other layers run when the edit is carried out)."""
        if decision.decision != "edit" or self.checks is None or request is None:
            return
        if request.server == DECISION_SERVER:  # a pipeline's decision: its pipeline validates
            return
        call = ToolCall(
            id=request.tool_call_id, name=request.tool, arguments=json.dumps(decision.arguments)
        )
        checked = self.checks.schema(call)
        if isinstance(checked, Rejection):
            raise DecisionError(f"edited arguments are invalid: {checked.message}")


def refused(why: str) -> ApplicationError:
    """A refused decision as the update's failure: typed, never retried, one line."""
    return ApplicationError(why, type=names.ERROR_DECISION_REFUSED, non_retryable=True)
