"""A refund triage pipeline's history replays against the current code: fresh from the test
stack, and as recorded (``KEEL_RECORD_FIXTURE=triage`` records it; histories/README.md).

The run covers every kind of step a pipeline has: tool calls, a decision whose model is not
sure, its escalation to a stronger tier and then to a human who edits the answer, and a
refund a human rejects (so the run has no effect on the desk)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from keel.contracts import Decision
from tests.helpers import plain_history
from tests.integration.test_approvals import decide, pending
from tests.integration.test_pipeline import DAMAGED, start_triage
from workflows.agent import AgentWorkflow
from workflows.triage.workflow import RefundTriageWorkflow

HISTORIES = Path(__file__).parent / "histories"
TRIAGE_FILE = "triage_run_history.json"


def _replayer(converter: DataConverter = pydantic_data_converter) -> Replayer:
    return Replayer(workflows=[AgentWorkflow, RefundTriageWorkflow], data_converter=converter)


async def test_fresh_triage_history_replays(client: Client) -> None:
    handle = await start_triage(client, "triage_unsure", DAMAGED.format(order="ORD-1041"))
    (claim,) = await pending(handle)
    edited = {"category": "damaged", "summary": "Torn sole."}
    assert (await decide(handle, claim, decision="edit", arguments=edited)).accepted
    (refund,) = await pending(handle)
    assert refund.tool == "refund_order"
    assert (await decide(handle, refund, decision="reject", reason="photo first")).accepted
    result = await handle.result()
    assert [d.decided_by for d in result.decisions] == ["human"]

    history = await handle.fetch_history()
    replayed = await _replayer(client.data_converter).replay_workflow(history)
    assert replayed.replay_failure is None
    if os.environ.get("KEEL_RECORD_FIXTURE") == "triage":  # recorded decrypted: plaintext
        plain = await plain_history(client, handle)
        (HISTORIES / TRIAGE_FILE).write_text(plain.to_json())


async def test_recorded_triage_history_replays() -> None:
    raw = json.loads((HISTORIES / TRIAGE_FILE).read_text())
    history = WorkflowHistory.from_json("fixture-triage", raw)
    replayed = await _replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None
    assert len(history.events) > 20
    # it is the pipeline's history: its workflow type, and the human's edit of the decision
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.workflow_type.name == "keel.pipeline.refund_triage"
    decisions = [
        decision.decision
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        for decision in pydantic_data_converter.payload_converter.from_payloads(
            event.workflow_execution_update_accepted_event_attributes.accepted_request.input.args.payloads,
            [Decision],
        )
    ]
    assert decisions == ["edit", "reject"]
