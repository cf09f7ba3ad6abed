"""Recorded histories keep replaying against the current workflow code (non-determinism
guard), and a fresh run's history replays too. See histories/README.md for how to record.
Fresh histories are encrypted (the test stack runs with the codec on) and are recorded
decrypted, so the files stay plaintext and replay without keys."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from keel.contracts import ApprovalRequest, Decision, DecisionOutcome, approval_digest, names
from tests.helpers import plain_history, start
from workflows.agent import AgentWorkflow

HISTORIES = Path(__file__).parent / "histories"


# Histories recorded by earlier versions, by the profile that produced them. Each must keep
# replaying against the current workflow code (see histories/README.md).
FIXTURE_FILES = {
    "support": "agent_workflow_history.json",  # walking skeleton: the demo run
    "guarded": "bounded_run_history.json",  # bounded runs: lookups, semantic refusals
    # context budgets: old results trimmed to stubs, old turns summarized (summary steps)
    "context_summary": "context_budget_run_history.json",
}
# A run that waits for a human and is approved through the ``decide`` update. Its fresh
# variant must drive the decision, so it is a test of its own, not a FIXTURE_FILES entry.
# sim/report_refund refunds 1.00 of ORD-1048, an order no other session-stack test refunds
# (tests/integration/test_approvals.py: the approving tests there share ORD-1050).
APPROVAL_PROFILE = "report_approval"
APPROVAL_FILE = "approval_run_history.json"  # before decisions were bound: no digest
# The same run once decisions are bound to their request (random id, digest; patch
# keel-bound-decisions), recorded before approval grants and access tokens.
BOUND_APPROVAL_FILE = "bound_approval_run_history.json"
# The zero-trust generation (patch keel-approval-grants): the approved call carries its
# decision for the worker's grant, and MCP activities get the run's principal. Fresh approval
# runs are recorded into this file.
GRANTED_APPROVAL_FILE = "granted_approval_run_history.json"
# A run that continued as new once (patch keel-continue-as-new): its two runs, first to last.
# The first lists the tools and makes the one tool turn, then continues as new; the second
# starts from the ContinuedRun and answers.
CONTINUED_PROFILE = "continued"
CONTINUED_FILES = ["continued_run_1_history.json", "continued_run_2_history.json"]
RECORDED = sorted(
    [*FIXTURE_FILES.values(), APPROVAL_FILE, BOUND_APPROVAL_FILE, GRANTED_APPROVAL_FILE]
)


def _replayer(converter: DataConverter = pydantic_data_converter) -> Replayer:
    """Recorded histories are plaintext (no codec needed); a fresh one from the test stack is
    encrypted, so it replays with the stack's converter (``client.data_converter``)."""
    return Replayer(workflows=[AgentWorkflow], data_converter=converter)


def _event_types(history: WorkflowHistory) -> set[EventType.ValueType]:
    return {event.event_type for event in history.events}


@pytest.mark.parametrize("profile", sorted(FIXTURE_FILES))
async def test_fresh_history_replays_without_nondeterminism(client: Client, profile: str) -> None:
    handle = await start(client, profile)
    await handle.result()
    history = await handle.fetch_history()

    result = await _replayer(client.data_converter).replay_workflow(history)
    assert result.replay_failure is None
    if os.environ.get("KEEL_RECORD_FIXTURE") == profile:  # recorded decrypted: plaintext
        plain = await plain_history(client, handle)
        (HISTORIES / FIXTURE_FILES[profile]).write_text(plain.to_json())


async def test_fresh_approval_history_replays_without_nondeterminism(client: Client) -> None:
    """A run that opens an approval request, is approved by the ``decide`` update and then
    executes the approved call replays; ``KEEL_RECORD_FIXTURE=report_approval`` records it."""
    handle = await start(client, APPROVAL_PROFILE, task="Help the customer.")
    for _ in range(400):
        requests = await handle.query("pending_approvals", result_type=list[ApprovalRequest])
        if requests:
            break
        await asyncio.sleep(0.05)
    [request] = requests
    assert (request.tool, request.arguments["order_id"]) == ("refund_order", "ORD-1048")
    decision = Decision(
        approval_id=request.approval_id, digest=request.digest, decision="approve", by="alice"
    )
    outcome = await handle.execute_update("decide", decision, result_type=DecisionOutcome)
    assert outcome.accepted and outcome.status == "executed"
    run_result = await handle.result()
    assert run_result.status == "completed"
    assert [(r.decision, r.by, r.outcome) for r in run_result.approvals] == [
        ("approve", "alice", "executed")
    ]
    history = await handle.fetch_history()
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED in _event_types(history)

    result = await _replayer(client.data_converter).replay_workflow(history)
    assert result.replay_failure is None
    if os.environ.get("KEEL_RECORD_FIXTURE") == APPROVAL_PROFILE:  # recorded decrypted
        plain = await plain_history(client, handle)
        (HISTORIES / GRANTED_APPROVAL_FILE).write_text(plain.to_json())


@pytest.mark.parametrize("name", RECORDED)
async def test_recorded_fixture_history_replays(name: str) -> None:
    """A history recorded by an earlier version must keep replaying."""
    history = WorkflowHistory.from_json("fixture-run", json.loads((HISTORIES / name).read_text()))
    result = await _replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None
    assert len(history.events) > 20


def test_recorded_context_budget_history_trims_and_summarizes() -> None:
    """The context-budget fixture guards trimming and summaries only if its model calls
    really sent stubs and summaries (a re-recording that lost them would pass silently)."""
    history = WorkflowHistory.from_json(
        "fixture-run", json.loads((HISTORIES / FIXTURE_FILES["context_summary"]).read_text())
    )
    converter = pydantic_data_converter.payload_converter
    views: list[Any] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == names.ACTIVITY_LLM_CHAT:
                [request] = converter.from_payloads(scheduled.input.payloads)
                views.append(request.get("view"))
    assert views[0] is None, "the first steps send the whole conversation"
    assert any(v and v["stubs"] and not v.get("summarize") for v in views), "a trimmed step"
    assert any(v and v.get("summarize") for v in views), "a summary step"
    assert any(v and v.get("summary") and not v.get("summarize") for v in views), (
        "a summarized step"
    )


def _decisions(name: str) -> tuple[list[Decision], list[DecisionOutcome], WorkflowHistory]:
    """The ``decide`` updates a recorded history accepted, and what they answered."""
    raw = json.loads((HISTORIES / name).read_text())
    history = WorkflowHistory.from_json("fixture-run", raw)
    decisions: list[Decision] = []
    outcomes: list[DecisionOutcome] = []
    converter = pydantic_data_converter.payload_converter
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            update = event.workflow_execution_update_accepted_event_attributes.accepted_request
            assert update.input.name == "decide"
            decisions += converter.from_payloads(update.input.args.payloads, [Decision])
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            success = event.workflow_execution_update_completed_event_attributes.outcome.success
            outcomes += converter.from_payloads(success.payloads, [DecisionOutcome])
    return decisions, outcomes, history


def test_recorded_approval_history_holds_an_approved_decision() -> None:
    """The approval fixture guards the approval path only if it really waited and was
    approved through the update (a re-recording that lost the decision would pass silently).
    It predates digests: its decision names the old predictable id and no digest."""
    decisions, outcomes, history = _decisions(APPROVAL_FILE)
    assert [(d.decision, d.by, d.digest) for d in decisions] == [("approve", "alice", None)]
    assert decisions[0].approval_id.startswith("apr-1-")
    assert [(o.accepted, o.status) for o in outcomes] == [(True, "executed")]
    assert EventType.EVENT_TYPE_TIMER_CANCELED in _event_types(history)  # the wait ended


def test_recorded_bound_approval_history_names_the_digest() -> None:
    """The bound generation: the patch marker is recorded and the decision named the
    request's random id and its digest."""
    decisions, outcomes, history = _decisions(BOUND_APPROVAL_FILE)
    assert [(d.decision, d.by) for d in decisions] == [("approve", "alice")]
    assert re.fullmatch(r"apr-[0-9a-f]{20}", decisions[0].approval_id)
    assert (decisions[0].digest or "").startswith("sha256:")
    assert [(o.accepted, o.status) for o in outcomes] == [(True, "executed")]
    assert EventType.EVENT_TYPE_MARKER_RECORDED in _event_types(history)


def test_recorded_granted_approval_history_carries_the_decision_to_the_worker() -> None:
    """The zero-trust generation: the grants patch marker is recorded, and the approved
    call's activity input carries the decision (``io.keel/approval``, what the worker turns
    into a grant) and the run's principal (temporalio-mcp's ``factory_argument``, what the
    worker's access token names) — and no token or grant, which only the worker mints."""
    decisions, outcomes, history = _decisions(GRANTED_APPROVAL_FILE)
    assert [(o.accepted, o.status) for o in outcomes] == [(True, "executed")]
    converter = pydantic_data_converter.payload_converter
    markers: list[Any] = []
    calls: list[Any] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            details = event.marker_recorded_event_attributes.details["patch-data"]
            markers += converter.from_payloads(details.payloads)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == "temporalio.mcp.support_desk.call-tool":
                calls += converter.from_payloads(scheduled.input.payloads)
    assert "keel-approval-grants" in {marker["id"] for marker in markers}
    [call] = [c for c in calls if c["name"] == "refund_order"]
    [decision] = decisions
    mark = call["meta"][names.META_APPROVAL]
    assert (mark["id"], mark["by"]) == (decision.approval_id, "alice")
    assert mark["digest"] == approval_digest("support_desk", "refund_order", call["arguments"])
    assert names.META_GRANT not in call["meta"]
    assert call["factory_argument"] == {"id": "tester", "roles": ["agent"]}


async def _run_ids(client: Client, workflow_id: str, first_run: str) -> list[str]:
    """Every run of a workflow id, first to last (following continue-as-new)."""
    runs = [first_run]
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=runs[-1])
        last = [event async for event in handle.fetch_history_events()][-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return runs
        runs.append(last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id)


async def test_fresh_continued_history_replays_without_nondeterminism(client: Client) -> None:
    """Both runs of a run that continued as new replay; ``KEEL_RECORD_FIXTURE=continued``
    records them."""
    handle = await start(client, CONTINUED_PROFILE, task="Look ORD-1042 and ORD-9999 up.")
    result = await handle.result()  # follows the run to its last generation
    assert (result.status, result.continued, result.model_calls) == ("completed", 1, 2)
    runs = await _run_ids(client, handle.id, handle.first_execution_run_id or "")
    assert len(runs) == 2
    for number, run_id in enumerate(runs):
        run = client.get_workflow_handle(handle.id, run_id=run_id)
        replayed = await _replayer(client.data_converter).replay_workflow(await run.fetch_history())
        assert replayed.replay_failure is None
        if os.environ.get("KEEL_RECORD_FIXTURE") == CONTINUED_PROFILE:  # recorded decrypted
            plain = await plain_history(client, run)
            (HISTORIES / CONTINUED_FILES[number]).write_text(plain.to_json())


def test_recorded_continued_histories_replay_as_one_run() -> None:
    """The recorded runs replay; the first records the patch marker and continues as new
    (carrying a ContinuedRun of generation 1), the second completes with ``continued`` 1."""
    histories = [
        WorkflowHistory.from_json("fixture-run", json.loads((HISTORIES / name).read_text()))
        for name in CONTINUED_FILES
    ]
    converter = pydantic_data_converter.payload_converter
    first, second = histories
    assert first.events[-1].event_type == (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW)
    markers = [
        converter.from_payloads(e.marker_recorded_event_attributes.details["patch-data"].payloads)
        for e in first.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    assert names.PATCH_CONTINUE_AS_NEW in {m[0]["id"] for m in markers}
    carried = first.events[-1].workflow_execution_continued_as_new_event_attributes
    [handed_on] = converter.from_payloads(carried.input.payloads)
    assert (handed_on["generation"], handed_on["ledger"]["model_calls"]) == (1, 1)
    assert "task" not in handed_on  # the task text travels in the conversation only
    closed = second.events[-1].workflow_execution_completed_event_attributes
    [outcome] = converter.from_payloads(closed.result.payloads)
    assert (outcome["status"], outcome["continued"], outcome["model_calls"]) == (
        "completed", 1, 2,
    )  # fmt: skip


@pytest.mark.parametrize("name", CONTINUED_FILES)
async def test_recorded_continued_history_replays(name: str) -> None:
    history = WorkflowHistory.from_json("fixture-run", json.loads((HISTORIES / name).read_text()))
    result = await _replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


@pytest.mark.parametrize("name", [*RECORDED, *CONTINUED_FILES])
def test_recorded_histories_are_plaintext(name: str) -> None:
    """Fixtures are recorded decrypted (``plain_history``): they replay without any keyring,
    and a re-recording that wrote the encrypted history (unreplayable once the test stack's
    temporary keys are gone) fails here."""
    assert "YmluYXJ5L2VuY3J5cHRlZA==" not in (HISTORIES / name).read_text()  # binary/encrypted
