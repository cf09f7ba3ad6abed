"""``keel.fallback.ticket``: hand a run that halted or failed to a person.

Deterministic workflow code, started by a run as its child (workflows/agent/fallback.py). Two
steps, each an activity with Temporal's retries:

1. open a ticket with the support desk's ``create_ticket`` tool — through the same MCP path
   the agent's tool calls take (workflows/tools/mcp_calls.py: the ``temporalio-mcp`` activity,
   the worker's interceptor with its circuit, spans and access token naming the run's
   principal), with the idempotency key ``<this workflow's id>:create_ticket``, so the desk's
   ledger opens it once however often the call is retried or the workflow replayed. The
   ticket carries everything the run collected: its task, how it ended, the last tool calls
   and the customer and order ids they named;
2. notify the profile's ``[fallback].notify`` webhook (activities/notify.py), if it has one,
   whether or not the ticket could be opened — a person must hear of the run either way.

The result (``FallbackResult``) is completed when the ticket was opened; a notification that
could not be sent is a failed step, named in the detail.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.notify import Notification, NotifyActivities
    from activities.tool_view import result_text
    from keel.contracts import (
        FALLBACK_TICKET,
        FallbackInput,
        FallbackResult,
        FallbackStep,
    )
    from workflows.failures import classify
    from workflows.tools.mcp_calls import Caller, call_tool

NOTIFY_TIMEOUT = timedelta(seconds=30)
MAX_BODY = 10_000  # create_ticket's bound on the body
MAX_TASK = 2_000


def ticket_arguments(request: FallbackInput) -> dict[str, Any]:
    """The ``create_ticket`` call: a subject naming the run, a body with what it collected."""
    why = request.failure_class or request.status
    subject = f"Keel run {request.parent_workflow_id} {request.status} ({why})"[:200]
    arguments: dict[str, Any] = {
        "subject": subject,
        "body": ticket_body(request)[:MAX_BODY],
        "priority": request.priority,
    }
    if request.customer_id:
        arguments["customer_id"] = request.customer_id
    return arguments


def ticket_body(request: FallbackInput) -> str:
    roles = ", ".join(request.principal.roles) or "no roles"
    lines = [
        f"The agent run {request.parent_workflow_id} (profile {request.profile}) ended"
        f" {request.status}: {request.failure_class or '-'}: {request.error or '-'}",
        "It was handed over to a person. What the run collected:",
        f"Task: {request.task[:MAX_TASK] if request.task else '(in the run history)'}",
        f"For: {request.principal.id} ({roles})",
        f"Model calls: {request.model_calls} · tool calls: {request.tool_calls}"
        f" · cost: ${request.cost_usd:.6f}",
    ]
    if request.customer_id or request.order_ids:
        orders = ", ".join(request.order_ids) or "-"
        lines.append(f"Customer: {request.customer_id or '-'} · orders: {orders}")
    if request.final_answer:
        lines.append(f"Last answer: {request.final_answer[:MAX_TASK]}")
    lines.append(f"Last tool calls ({len(request.facts)}):")
    lines.extend(
        f"  step {f.step} {f.server or '-'}.{f.tool} {f.outcome}: {f.detail}" for f in request.facts
    )
    return "\n".join(lines)


def ticket_id_of(data: Any, text: str) -> str | None:
    """The ``ticket_id`` of a ``create_ticket`` result (structured, else its JSON text)."""
    if not isinstance(data, dict):
        try:
            data = json.loads(text)
        except ValueError:
            return None
    ticket = data.get("ticket_id") if isinstance(data, dict) else None
    return ticket if isinstance(ticket, str) else None


@workflow.defn(name=FALLBACK_TICKET)
class TicketFallback:
    """Opens a ticket for a person with what the run collected, then notifies."""

    def __init__(self) -> None:
        self._steps: list[FallbackStep] = []

    @workflow.run
    async def run(self, request: FallbackInput) -> FallbackResult:
        ticket_id, detail = await self._open_ticket(request)
        notified = await self._notify(request, ticket_id)
        if request.notify and not notified:
            detail += "; the notification could not be sent"
        return FallbackResult(
            status="completed" if ticket_id else "failed",
            parent_workflow_id=request.parent_workflow_id,
            ticket_id=ticket_id,
            notified=notified,
            detail=detail,
            steps=self._steps,
        )

    async def _open_ticket(self, request: FallbackInput) -> tuple[str | None, str]:
        key = f"{workflow.info().workflow_id}:create_ticket"
        step = FallbackStep(name="create_ticket", kind="tool", started_at=workflow.now(),
                            idempotency_key=key)  # fmt: skip
        self._steps.append(step)
        if request.server is None:
            step.outcome, step.detail = "skipped", "the profile has no server for the ticket"
            return None, step.detail
        try:
            result = await call_tool(request.server, "create_ticket", ticket_arguments(request),
                                     key, caller=Caller(request.principal))  # fmt: skip
        except ActivityError as exc:
            step.outcome = "failed"
            step.detail = classify(exc, f"create_ticket on {request.server.name!r}")[1]
            return None, step.detail
        text = result_text(result)
        ticket_id = None if result.is_error else ticket_id_of(result.structured_content, text)
        if ticket_id is None:
            step.outcome, step.detail = "tool_error", f"create_ticket: {text[:500]}"
            return None, step.detail
        step.detail = f"opened {ticket_id}"
        return ticket_id, f"ticket {ticket_id} opened on {request.server.name}"

    async def _notify(self, request: FallbackInput, ticket_id: str | None) -> bool:
        if not request.notify:
            return False
        step = FallbackStep(name="notify", kind="notify", started_at=workflow.now())
        self._steps.append(step)
        payload = {
            "event": "run_fell_back",
            "workflow_id": request.parent_workflow_id,
            "fallback_workflow_id": workflow.info().workflow_id,
            "profile": request.profile,
            "status": request.status,
            "failure_class": request.failure_class,
            "error": request.error,
            "ticket_id": ticket_id,
            "customer_id": request.customer_id,
            "order_ids": request.order_ids,
        }
        try:
            await workflow.execute_activity_method(
                NotifyActivities.webhook,
                Notification(url=request.notify, payload=payload),
                start_to_close_timeout=NOTIFY_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary=f"notify fallback of {request.parent_workflow_id}",
            )
        except ActivityError as exc:
            step.outcome, step.detail = "failed", str(exc.cause or exc)[:500]
            return False
        step.detail = "sent"
        return True
