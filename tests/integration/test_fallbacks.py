"""Deterministic fallbacks on the real stack: a run that halts hands over to
``keel.fallback.ticket``, a child workflow with its own history and result, which opens one
ticket on the support desk (read back from its database) and notifies the simulator's
webhook sink; the run's result, its status and ``keel status`` / ``keel result`` name it."""

from __future__ import annotations

import re
import sqlite3
import uuid
from typing import Any

import httpx2
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError

from keel.contracts import AgentInput, FallbackResult, Principal, RunResult, RunStatus, names
from keel.stack import Stack
from tests.conftest import FALLBACK_CHANNEL
from tests.helpers import keel, start

TASK = "Where is my order ORD-1042? I'm Maria Lopez, customer CUS-1001."


def tickets_naming(stack: Stack, workflow_id: str) -> list[tuple[Any, ...]]:
    """The support desk's tickets whose subject names the run, with their notes."""
    with sqlite3.connect(stack.config.support_desk_db) as db:
        return db.execute(
            "SELECT t.ticket_id, t.customer_id, t.status, t.priority, t.channel, n.author, n.body"
            " FROM tickets t JOIN ticket_notes n ON n.ticket_id = t.ticket_id"
            " WHERE t.subject LIKE ? ORDER BY t.ticket_id",
            (f"%{workflow_id} %",),
        ).fetchall()


def notifications(stack: Stack, workflow_id: str) -> list[dict[str, Any]]:
    url = f"{stack.config.llm_base_url}/sim/webhooks/{FALLBACK_CHANNEL}"
    events = httpx2.get(url, timeout=5.0).json()["events"]
    return [e["body"] for e in events if e["body"].get("workflow_id") == workflow_id]


async def test_a_halting_run_starts_its_fallback_and_the_result_names_it(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "fallback_ticket", TASK)
    result = await handle.result()
    assert result.status == "halted" and result.failure_class == "step_limit"
    fallback = result.fallback
    assert fallback is not None
    assert fallback.workflow == "keel.fallback.ticket"
    assert fallback.workflow_id == f"{handle.id}-fallback"
    assert fallback.status == "completed"
    assert fallback.ticket_id is not None and re.fullmatch(r"TCK-\d{4}", fallback.ticket_id)

    # Exactly one ticket, for the customer the task named, with what the run collected.
    [ticket] = tickets_naming(stack, handle.id)
    ticket_id, customer, status, priority, channel, author, body = ticket
    assert (ticket_id, customer, status, priority) == (fallback.ticket_id, "CUS-1001", "open",
                                                       "high")  # fmt: skip
    assert (channel, author) == ("keel", "keel")
    assert TASK in body and "step_limit" in body and "get_order" in body

    # The webhook sink heard of it once, naming the ticket.
    [notice] = notifications(stack, handle.id)
    assert notice["event"] == "run_fell_back"
    assert (notice["ticket_id"], notice["failure_class"]) == (fallback.ticket_id, "step_limit")

    # The child has its own history and result, and Temporal knows whose child it is.
    child = client.get_workflow_handle(fallback.workflow_id, result_type=FallbackResult)
    described = await child.describe()
    assert described.workflow_type == "keel.fallback.ticket"
    assert described.parent_id == handle.id
    own = await child.result()
    assert (own.status, own.ticket_id, own.notified) == ("completed", fallback.ticket_id, True)
    assert [(s.name, s.outcome) for s in own.steps] == [("create_ticket", "ok"), ("notify", "ok")]
    assert own.steps[0].idempotency_key == f"{fallback.workflow_id}:create_ticket"
    activities = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        async for e in child.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert activities == ["temporalio.mcp.support_desk.call-tool", names.ACTIVITY_NOTIFY_WEBHOOK]

    # The closed run's status says so, and so do `keel status` and `keel result`.
    status = await handle.query(names.QUERY_STATUS, result_type=RunStatus)
    assert status.fallback == fallback
    assert status.last_event == f"fallback keel.fallback.ticket → ticket {ticket_id} (completed)"
    line = f"fallback: keel.fallback.ticket → ticket {ticket_id} (completed)"
    for command, code in (("status", 0), ("result", 1)):  # `keel result`: 1 unless completed
        shown = keel(stack, command, handle.id)
        assert shown.returncode == code, shown.stderr
        assert line in shown.stdout, shown.stdout


async def test_a_failure_class_the_profile_does_not_name_starts_no_fallback(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "fallback_other", TASK)
    result = await handle.result()
    assert result.status == "halted" and result.failure_class == "step_limit"
    assert result.fallback is None
    with pytest.raises(RPCError, match="not found"):
        await client.get_workflow_handle(f"{handle.id}-fallback").describe()
    assert tickets_naming(stack, handle.id) == []
    assert notifications(stack, handle.id) == []


async def test_the_same_run_again_under_its_workflow_id_opens_no_second_ticket(
    client: Client, stack: Stack
) -> None:
    # The fallback's create_ticket carries the key "<child id>:create_ticket": a run repeated
    # under the same workflow id (the same work) finds the ticket the first one opened.
    workflow_id = f"test-fallback-again-{uuid.uuid4().hex[:8]}"
    agent_input = AgentInput(
        profile="fallback_ticket", task=TASK, principal=Principal(id="tester", roles=["agent"])
    )
    results: list[RunResult] = []
    for _ in range(2):
        handle = await client.start_workflow(
            "AgentWorkflow", agent_input, id=workflow_id, task_queue="agents",
            result_type=RunResult,
        )  # fmt: skip
        results.append(await handle.result())
    first, second = (r.fallback for r in results)
    assert first is not None and second is not None
    assert first.status == second.status == "completed"
    assert first.ticket_id == second.ticket_id
    assert len(tickets_naming(stack, workflow_id)) == 1
    assert len(notifications(stack, workflow_id)) == 2  # each run told a person
