"""Runs started with input they cannot use end at once, typed and searchable.

Started the way a user does, with the Temporal CLI (``temporal workflow start --input``): two
``--input`` values used to leave the run Running forever (every workflow task failed on the
extra argument), and a run that failed on bad input carried no ``KeelFailureClass``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

from keel.contracts import RunResult, names
from keel.stack import Stack, temporal_binary

GOOD = {"profile": "support", "task": "Where is my order?"}
FAILURE_CLASS = SearchAttributeKey.for_keyword(names.SA_FAILURE_CLASS)


def temporal_start(stack: Stack, workflow_id: str, *inputs: object) -> None:
    argv = [str(temporal_binary()), "workflow", "start", "--address",
            stack.config.temporal_address, "--type", names.WORKFLOW_TYPE, "--task-queue",
            names.TASK_QUEUE, "--workflow-id", workflow_id]  # fmt: skip
    for value in inputs:
        argv += ["--input", json.dumps(value)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


async def failure_of(client: Client, workflow_id: str) -> ApplicationError:
    handle = client.get_workflow_handle(workflow_id, result_type=RunResult)
    try:
        await asyncio.wait_for(handle.result(), timeout=60)
    except WorkflowFailureError as exc:
        assert isinstance(exc.cause, ApplicationError), exc.cause
        return exc.cause
    raise AssertionError("the run did not fail")


async def failure_class_of(client: Client, workflow_id: str) -> str | None:
    description = await client.get_workflow_handle(workflow_id).describe()
    return description.typed_search_attributes.get(FAILURE_CLASS)


async def test_two_inputs_fail_the_run_with_invalid_input(client: Client, stack: Stack) -> None:
    workflow_id = f"two-inputs-{uuid.uuid4().hex[:8]}"
    temporal_start(stack, workflow_id, GOOD, GOOD)

    error = await failure_of(client, workflow_id)

    assert error.type == names.ERROR_INVALID_INPUT
    assert "takes exactly one input" in error.message and "given 2" in error.message
    assert await failure_class_of(client, workflow_id) == "invalid_input"


async def test_no_input_fails_the_run_with_invalid_input(client: Client, stack: Stack) -> None:
    workflow_id = f"no-input-{uuid.uuid4().hex[:8]}"
    temporal_start(stack, workflow_id)

    error = await failure_of(client, workflow_id)

    assert error.type == names.ERROR_INVALID_INPUT
    assert "was given none" in error.message


async def test_bad_input_and_unknown_profile_set_the_failure_class(
    client: Client, stack: Stack
) -> None:
    cases = {
        "invalid_input": {"profile": "support", "task": 42},
        "config_error": {"profile": "no_such_profile", "task": "x"},
    }
    for expected, raw in cases.items():
        workflow_id = f"bad-input-{expected}-{uuid.uuid4().hex[:8]}"
        temporal_start(stack, workflow_id, raw)
        await failure_of(client, workflow_id)
        assert await failure_class_of(client, workflow_id) == expected
