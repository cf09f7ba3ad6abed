"""Watching a run: its live progress events, then its result (``keel run``, ``keel watch``).

The workflow appends ``ProgressEvent`` s to its workflow stream (topic ``progress``,
``temporalio.contrib.workflow_streams``). ``WorkflowStreamClient.subscribe`` long-polls the
running workflow with an update per batch and, once the run has closed, reads what is left
with a query; so attaching late, or to a finished run, replays every event from the first.
A run started by a worker that predates the stream has none: then the ``status`` query's
``last_event`` is followed instead, as ``keel.client.follow`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.service import RPCError, RPCStatusCode

from keel.client import follow
from keel.contracts import PROGRESS_TOPIC, ProgressEvent, RunResult, RunStatus
from keel.contracts.errors import InputError

# How long a caught-up subscriber waits before polling again (each poll is an update in the
# run's history, so not less).
POLL_COOLDOWN = timedelta(milliseconds=100)


async def run_handle(client: Client, workflow_id: str) -> WorkflowHandle[object, RunResult]:
    """The run's handle; an id that names no run is an ``InputError`` (one line, exit 2)."""
    handle = client.get_workflow_handle(workflow_id, result_type=RunResult)
    try:
        await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise InputError(f"no run with id {workflow_id!r}") from None
        raise
    return handle


async def stream_events(
    client: Client, workflow_id: str, on_event: Callable[[ProgressEvent], None]
) -> int:
    """Deliver the run's progress events, from the first, until the run has closed and every
    event has been read. Returns how many were delivered."""
    stream = WorkflowStreamClient.create(client, workflow_id)
    count = 0
    async for item in stream.subscribe(
        [PROGRESS_TOPIC], result_type=ProgressEvent, poll_cooldown=POLL_COOLDOWN
    ):
        on_event(item.data)
        count += 1
    return count


async def watch(
    client: Client, workflow_id: str, on_event: Callable[[ProgressEvent], None]
) -> RunResult:
    """Report every progress event of run ``workflow_id`` (what happened so far, then live),
    then return its result. Raises ``WorkflowFailureError`` when the run failed to start."""
    handle = await run_handle(client, workflow_id)
    try:
        await stream_events(client, workflow_id, on_event)
    except (WorkflowUpdateFailedError, WorkflowQueryFailedError):
        # No stream on this run (an older worker started it): follow the status instead.
        return await follow(handle, lambda status: on_event(status_event(status)))
    return await handle.result()


def status_event(status: RunStatus) -> ProgressEvent:
    """A ``status`` query answer as a progress event (for runs without a stream)."""
    return ProgressEvent(
        kind="status",
        message=status.last_event,
        at=datetime.now(UTC),
        step=status.step or None,
        data={"state": status.state},
    )
