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
"""

from __future__ import annotations

import json
import logging
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from keel.contracts import ApprovalRequest, Decision, DecisionOutcome, ToolCall, names
    from workflows.approvals.desk import ApprovalDesk, DecisionError
    from workflows.approvals.versions import bound
    from workflows.report.events import emit
    from workflows.report.reporter import Reporter
    from workflows.tools.check import CheckPipeline
    from workflows.tools.validation import Rejection


class ApprovalHandlers:
    """Queries, signals and updates over one run's approval desk."""

    def __init__(self, desk: ApprovalDesk, reporter: Reporter) -> None:
        self._desk = desk
        self._reporter = reporter
        self.checks: CheckPipeline | None = None  # set once the run's tools are listed

    def pending(self) -> list[ApprovalRequest]:
        """Tool calls waiting for a human decision, oldest first."""
        return list(self._desk.pending.values())

    def signal(self, payload: Any) -> None:
        """A human decision (fire and forget). One that cannot be accepted — including one
        for a request that is not open (yet) — is recorded in the audit trail."""
        now = workflow.now()
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
        try:
            request = desk.check(decision, now)
            self._check_edit(decision, request)
        except DecisionError as exc:
            opened = desk.pending.get(decision.approval_id)
            desk.refuse(decision, str(exc), now, opened)
            self._reporter.decision_refused(decision, str(exc), opened)
            return
        if request is not None:
            desk.accept(decision)

    async def update(self, decision: Decision) -> DecisionOutcome:
        """A human decision that answers: what came of it, or how the run ended first."""
        desk = self._desk
        try:
            if desk.check(decision, workflow.now()) is not None:
                desk.accept(decision)
        except DecisionError as exc:
            raise refused(str(exc)) from None
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
        missing role, invalid edit."""
        try:
            request = self._desk.check(decision, workflow.now())
            self._check_edit(decision, request)
        except DecisionError as exc:
            raise refused(str(exc)) from None

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
        call = ToolCall(
            id=request.tool_call_id, name=request.tool, arguments=json.dumps(decision.arguments)
        )
        checked = self.checks.schema(call)
        if isinstance(checked, Rejection):
            raise DecisionError(f"edited arguments are invalid: {checked.message}")


def refused(why: str) -> ApplicationError:
    """A refused decision as the update's failure: typed, never retried, one line."""
    return ApplicationError(why, type=names.ERROR_DECISION_REFUSED, non_retryable=True)
