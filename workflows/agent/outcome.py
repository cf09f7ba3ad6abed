"""How a run ends: ``KeelState`` and ``KeelFailureClass``, the approval desk's last audit,
the observers' ``run.finished``, and the ``RunResult`` (covering every run of the workflow id
when it continued as new).

Workflow code, owned by ``AgentWorkflow`` (workflows/agent/workflow.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from keel.contracts import RunOutcome, RunResult, RunState, names
    from workflows.agent.state import AgentState, Stop
    from workflows.approvals.handlers import ApprovalHandlers
    from workflows.report.reporter import Reporter

KEEL_FAILURE_CLASS = SearchAttributeKey.for_keyword(names.SA_FAILURE_CLASS)
# workflow.patched id: runs that end without a result also upsert KeelFailureClass.
FAILURE_CLASS_WITHOUT_RESULT = "failure-class-without-result"


class Outcomes:
    """The end of one run (see the module docstring)."""

    def __init__(
        self, state: AgentState, approvals: ApprovalHandlers, reporter: Reporter,
        set_state: Callable[[RunState], None], generation: int,
    ) -> None:  # fmt: skip
        self.state = state
        self._approvals = approvals
        self._reporter = reporter
        self._set_state = set_state
        self.generation = generation  # times the run has continued as new

    def finish(
        self,
        status: RunOutcome,
        *,
        final_answer: str | None = None,
        stop: Stop | None = None,
        error: str | None = None,
    ) -> RunResult:
        phase: RunState = (
            "completed" if status == "completed" else ("halted" if status == "halted" else "failed")
        )
        self._set_state(phase)
        if stop is not None:
            workflow.upsert_search_attributes([KEEL_FAILURE_CLASS.value_set(stop.failure_class)])
            self.state.last_event = f"{status}: {stop.reason or stop.failure_class}: {stop.message}"
        else:
            self.state.last_event = status
        self._approvals.run_ended(status, error or (stop.message if stop else None))
        result = self.result(
            status,
            final_answer=final_answer,
            stop_reason=(stop.reason or None) if stop else None,
            failure_class=stop.failure_class if stop else None,
            error=error if error is not None else (stop.message if stop else None),
        )
        self._reporter.finished(result, self.state.ledger.model_calls)
        return result

    def ended_without_result(self, failure_class: str, message: str) -> None:
        """A run that could not start (bad input, profile, configuration) or was cancelled
        ends as a failed or cancelled workflow, not a result; watchers, logs and metrics
        still hear of it, and ``KeelFailureClass`` names why (a new command: histories
        recorded before it replay without it)."""
        if workflow.patched(FAILURE_CLASS_WITHOUT_RESULT):
            workflow.upsert_search_attributes([KEEL_FAILURE_CLASS.value_set(failure_class)])
        self._approvals.run_ended(failure_class, message)
        self._reporter.finished(
            self.result("failed", failure_class=failure_class, error=message),
            self.state.ledger.model_calls,
        )

    def result(self, status: RunOutcome, **outcome: Any) -> RunResult:
        """The run's result: ``outcome`` fields plus what the ledger and the desk hold."""
        state = self.state
        return RunResult(
            status=status,
            profile=state.profile,
            model=state.model,
            steps=state.ledger.steps,
            usage=state.ledger.usage,
            tool_calls=state.ledger.tool_calls,
            model_calls=state.ledger.model_calls,
            cost_usd=round(state.ledger.cost_usd, 9),
            approvals=state.desk.audit,
            guidance=state.guidance_used,
            continued=self.generation,
            decisions=state.decisions,
            **outcome,
        )
