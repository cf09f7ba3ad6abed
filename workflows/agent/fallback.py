"""A run that halts or fails hands over to its profile's fallback workflow.

Workflow code, owned by ``AgentWorkflow`` (workflows/agent/workflow.py), which arms it once
the profile is known and passes every result through :meth:`Fallbacks.after`. Only a profile
with a ``[fallback]`` does anything here, so runs of other profiles — and every history
recorded before fallbacks existed — command exactly what they did before.

When the result is ``halted`` or ``failed`` with a failure class in ``[fallback].on``, the
fallback workflow (``keel.fallback.ticket`` unless the profile names another) runs as a child
workflow with the id ``<workflow id>-fallback`` and a ``FallbackInput``: the task, the
principal, how the run ended, the last tool calls it made and the customer and order ids they
named. The run waits for it (bounded by ``[fallback].timeout_seconds``), so its result can say
what came of it (``RunResult.fallback``); the ``status`` query shows it while it runs. The
child's parent close policy is ``ABANDON``: a run terminated while its fallback works does not
take the ticket down with it.
"""

from __future__ import annotations

import re
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ChildWorkflowCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from keel.contracts import (
        Fact,
        FallbackInput,
        FallbackRecord,
        FallbackResult,
        FallbackSettings,
        Principal,
        Profile,
        RunResult,
    )
    from workflows.agent.state import AgentState
    from workflows.report.events import emit

# How many of the run's last tool calls the fallback gets (their step records' one-line detail).
MAX_FACTS = 20
MAX_ORDER_IDS = 10
_CUSTOMER = re.compile(r"\bCUS-\d{4}\b")
_ORDER = re.compile(r"\bORD-\d{4}\b")


def triggers(settings: FallbackSettings | None, result: RunResult) -> bool:
    """Whether ``result`` starts the fallback: the run halted or failed (not completed, not
    rejected by a human) with one of the failure classes the profile names."""
    return (
        settings is not None
        and result.status in ("halted", "failed")
        and result.failure_class in settings.on
    )


def fallback_input(
    profile: Profile, task: str, principal: Principal, result: RunResult
) -> FallbackInput:
    """What the fallback gets: everything the run collected (see the module docstring)."""
    settings = profile.fallback
    assert settings is not None
    tools = [s for s in result.steps if s.kind == "tool"][-MAX_FACTS:]
    facts = [Fact(step=s.step, tool=s.name, server=s.server, outcome=s.outcome,
                  detail=s.detail) for s in tools]  # fmt: skip
    seen = "\n".join([task, *(f.detail for f in facts), result.final_answer or ""])
    customers = _CUSTOMER.findall(seen)
    return FallbackInput(
        parent_workflow_id=workflow.info().workflow_id,
        profile=profile.name,
        task=task,
        principal=principal,
        status=result.status,
        stop_reason=result.stop_reason,
        failure_class=result.failure_class,
        error=result.error,
        final_answer=result.final_answer,
        model_calls=result.model_calls,
        tool_calls=result.tool_calls,
        cost_usd=result.cost_usd,
        facts=facts,
        customer_id=customers[0] if customers else None,
        order_ids=list(dict.fromkeys(_ORDER.findall(seen)))[:MAX_ORDER_IDS],
        server=next((s for s in profile.servers if s.name == settings.server), None),
        notify=settings.notify,
        priority=settings.priority,
    )


class Fallbacks:
    """The fallback of one run (see the module docstring)."""

    def __init__(self, state: AgentState) -> None:
        self._state = state
        self._armed: tuple[Profile, str, Principal] | None = None

    def arm(self, profile: Profile, task: str, principal: Principal) -> None:
        """The run's profile, task and principal, once known (a continued run: no task)."""
        self._armed = (profile, task, principal)

    async def after(self, result: RunResult) -> RunResult:
        """``result``, or — when it starts the fallback — ``result`` naming the fallback."""
        if self._armed is None:
            return result
        profile, task, principal = self._armed
        settings = profile.fallback
        if settings is None or not triggers(settings, result):
            return result
        child_id = f"{workflow.info().workflow_id}-fallback"
        record = FallbackRecord(workflow=settings.workflow, workflow_id=child_id, status="running")
        self._show(record, f"fallback {settings.workflow} running")
        request = fallback_input(profile, task, principal, result)
        try:
            outcome = await workflow.execute_child_workflow(
                settings.workflow,
                request,
                id=child_id,
                result_type=FallbackResult,
                execution_timeout=timedelta(seconds=settings.timeout_seconds),
                parent_close_policy=ParentClosePolicy.ABANDON,
                cancellation_type=ChildWorkflowCancellationType.ABANDON,
                static_summary=f"fallback of {request.parent_workflow_id}",
            )
        except (ChildWorkflowError, WorkflowAlreadyStartedError) as exc:
            cause = exc.cause if isinstance(exc, ChildWorkflowError) and exc.cause else exc
            record = record.model_copy(update={"status": "failed", "detail": str(cause)[:500]})
        else:
            done = {"status": outcome.status, "ticket_id": outcome.ticket_id}
            record = record.model_copy(update={**done, "detail": outcome.detail})
        ticket = f" → ticket {record.ticket_id}" if record.ticket_id else ""
        self._show(record, f"fallback {settings.workflow}{ticket} ({record.status})")
        emit("run.fallback", workflow=record.workflow, fallback_workflow_id=record.workflow_id,
             status=record.status, ticket_id=record.ticket_id, detail=record.detail,
             failure_class=result.failure_class)  # fmt: skip
        return result.model_copy(update={"fallback": record})

    def _show(self, record: FallbackRecord, event: str) -> None:
        self._state.fallback = record
        self._state.last_event = event
