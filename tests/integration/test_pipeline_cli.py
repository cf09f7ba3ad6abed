"""Starting and deciding the refund triage pipeline as a user does: ``keel run`` (which
starts the workflow type the profile names), ``keel approvals`` / ``keel reject``, and the
Temporal CLI (``temporal workflow start --type keel.pipeline.refund_triage``)."""

from __future__ import annotations

import json
import subprocess
import uuid

from temporalio.client import Client

from keel.contracts import RunResult, names
from keel.stack import Stack, temporal_binary
from tests.helpers import keel
from tests.integration.test_cli_approvals import wait_for_request
from tests.integration.test_pipeline import DAMAGED
from tests.integration.test_start_input import failure_of, temporal_start


def test_keel_run_starts_the_profiles_pipeline_and_a_human_declines_its_decision(
    stack: Stack,
) -> None:
    task = DAMAGED.format(order="ORD-1041")
    started = keel(stack, "run", "triage_unsure", task, "--role", "agent", "--no-wait")
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()

    request = wait_for_request(stack, run_id)
    assert (request["tool"], request["server"]) == ("decision.claim", "keel.decision")
    listed = keel(stack, "approvals")
    assert "decision.claim" in listed.stdout and run_id in listed.stdout
    rejected = keel(stack, "reject", run_id, request["approval_id"], "--reason", "not ours",
                    "--by", "alice", "--role", "supervisor")  # fmt: skip
    assert rejected.returncode == 0, rejected.stderr

    out = keel(stack, "result", run_id, "--json")
    assert out.returncode == 0, out.stderr
    result = RunResult.model_validate_json(out.stdout)
    assert result.status == "completed"
    (claim,) = result.decisions
    assert (claim.decided_by, claim.answer, claim.outcome) == ("human", None, "declined by alice")
    assert "A colleague will look at your request about order ORD-1041" in (
        result.final_answer or ""
    )
    assert result.tool_calls == 2  # the two lookups; no refund


async def test_the_temporal_cli_starts_the_pipeline(client: Client, stack: Stack) -> None:
    workflow_id = f"triage-cli-{uuid.uuid4().hex[:8]}"
    task = "ORD-1045 arrived damaged, I want my money back"  # a pending order: nothing charged
    argv = [str(temporal_binary()), "workflow", "start", "--address",
            stack.config.temporal_address, "--type", "keel.pipeline.refund_triage",
            "--task-queue", names.TASK_QUEUE, "--workflow-id", workflow_id, "--input",
            json.dumps({"profile": "triage_invalid", "task": task})]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    result = await client.get_workflow_handle(workflow_id, result_type=RunResult).result()
    assert result.status == "completed"
    assert "Order ORD-1045 is pending: nothing was charged" in (result.final_answer or "")
    assert [d.answer for d in result.decisions] == [
        {"category": "damaged", "summary": "The sole of the shoe came apart on arrival."}
    ]


async def test_the_agent_workflow_refuses_a_pipeline_profile(client: Client, stack: Stack) -> None:
    """Started as an agent run (``--type AgentWorkflow``), a pipeline's profile fails the run
    at once, naming the workflow type that runs it."""
    workflow_id = f"triage-as-agent-{uuid.uuid4().hex[:8]}"
    temporal_start(stack, workflow_id, {"profile": "triage_invalid", "task": "ORD-1042 torn"})
    error = await failure_of(client, workflow_id)
    assert error.type == names.ERROR_PROFILE
    assert "is run by the pipeline keel.pipeline.refund_triage" in error.message
