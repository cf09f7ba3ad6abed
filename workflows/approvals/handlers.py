"""The human side of approvals: the ``pending_approvals`` query and the ``decide`` signal and
update. A base class of ``AgentWorkflow`` so the workflow module keeps to the loop; Temporal
registers handlers defined on base classes like its own."""

from __future__ import annotations

import json
import logging
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from keel.contracts import ApprovalRequest, Decision, DecisionOutcome, ToolCall
    from workflows.approvals.policy import ApprovalDesk, DecisionError
    from workflows.report.events import emit
    from workflows.report.reporter import Reporter
    from workflows.tools.validation import Rejection, Validator


class ApprovalHandlers:
    """Handlers over ``self._desk`` (the run's ApprovalDesk), ``self._validator`` and
    ``self._reporter`` (which logs decisions that could not be accepted)."""

    _desk: ApprovalDesk
    _validator: Validator | None
    _reporter: Reporter

    @workflow.query(name="pending_approvals")
    def pending_approvals(self) -> list[ApprovalRequest]:
        """Tool calls waiting for a human decision, oldest first."""
        return list(self._desk.pending.values())

    @workflow.signal(name="decide")
    def decide(self, payload: Any) -> None:
        """A human decision (fire and forget). One that cannot be accepted is recorded in the
        audit trail; one for a request not opened yet is kept until it is."""
        now = workflow.now()
        try:
            decision = Decision.model_validate(payload)
        except ValidationError as exc:
            emit("approval.signal_ignored", level=logging.WARNING, error=str(exc)[:500])
            return
        known = (
            decision.approval_id in self._desk.pending
            or decision.approval_id in self._desk.accepted
            or decision.approval_id in self._desk.closed
        )
        if not known:
            self._desk.early[decision.approval_id] = decision
            return
        try:
            request = self._desk.check(decision, now)
            self._check_edit(decision)
        except DecisionError as exc:
            self._desk.refuse(decision, str(exc), now)
            self._reporter.decision_refused(decision, str(exc))
            return
        if request is not None:
            self._desk.accept(decision)

    @workflow.update(name="decide")
    async def decide_update(self, decision: Decision) -> DecisionOutcome:
        """A human decision that answers: accepted or not, and what came of it."""
        if self._desk.check(decision, workflow.now()) is not None:
            self._desk.accept(decision)
        approval = decision.approval_id
        await workflow.wait_condition(lambda: approval in self._desk.closed)
        return DecisionOutcome(
            approval_id=approval, accepted=True, status=self._desk.closed[approval]
        )

    @decide_update.validator
    def _validate_decision(self, decision: Decision) -> None:
        """Refuse before accepting: unknown or expired id, missing role, invalid edit."""
        self._desk.check(decision, workflow.now())
        self._check_edit(decision)

    def _check_edit(self, decision: Decision) -> None:
        if decision.decision != "edit" or self._validator is None:
            return
        request = self._desk.pending[decision.approval_id]
        call = ToolCall(
            id=request.tool_call_id, name=request.tool, arguments=json.dumps(decision.arguments)
        )
        checked = self._validator.check_schema(call)
        if isinstance(checked, Rejection):
            raise DecisionError(f"edited arguments are invalid: {checked.message}")
