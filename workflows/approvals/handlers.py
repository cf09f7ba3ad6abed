"""The human side of approvals: what the ``pending_approvals`` query, the ``decide`` signal
and the ``decide`` update do.

``AgentWorkflow`` declares the handlers (Temporal registers the methods of the workflow
class) and delegates each to an ``ApprovalHandlers`` it owns, which holds the run's desk, its
reporter and — once the tools are listed — its check pipeline: the same pipeline the turn and
the edit path use, so an edit the validator lets through is checked by the same rules.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from keel.contracts import ApprovalRequest, Decision, DecisionOutcome, ToolCall
    from workflows.approvals.desk import ApprovalDesk, DecisionError
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
        """A human decision (fire and forget). One that cannot be accepted is recorded in the
        audit trail; one for a request not opened yet is kept until it is."""
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
        if not known:
            desk.early[decision.approval_id] = decision
            return
        try:
            request = desk.check(decision, now)
            self._check_edit(decision)
        except DecisionError as exc:
            desk.refuse(decision, str(exc), now)
            self._reporter.decision_refused(decision, str(exc))
            return
        if request is not None:
            desk.accept(decision)

    async def update(self, decision: Decision) -> DecisionOutcome:
        """A human decision that answers: accepted or not, and what came of it."""
        if self._desk.check(decision, workflow.now()) is not None:
            self._desk.accept(decision)
        approval = decision.approval_id
        await workflow.wait_condition(lambda: approval in self._desk.closed)
        return DecisionOutcome(
            approval_id=approval, accepted=True, status=self._desk.closed[approval]
        )

    def validate(self, decision: Decision) -> None:
        """Refuse before accepting: unknown or expired id, missing role, invalid edit."""
        self._desk.check(decision, workflow.now())
        self._check_edit(decision)

    def _check_edit(self, decision: Decision) -> None:
        """The schema layer of the run's pipeline, on an edit's arguments (a handler may not
        do I/O; the lookups and the other layers run when the edit is carried out)."""
        if decision.decision != "edit" or self.checks is None:
            return
        request = self._desk.pending[decision.approval_id]
        call = ToolCall(
            id=request.tool_call_id, name=request.tool, arguments=json.dumps(decision.arguments)
        )
        checked = self.checks.schema(call)
        if isinstance(checked, Rejection):
            raise DecisionError(f"edited arguments are invalid: {checked.message}")
