"""Finding the finished runs of a window in Temporal's visibility and reading their results.

Visibility lists the closed ``AgentWorkflow`` executions whose close time lies in the window;
each run's ``RunResult`` (or, for a run that failed as a workflow, its failure) is then read
from its history's close event, a bounded number at a time. A ``--profile`` filter narrows the
visibility query by the ``KeelProfile`` search attribute and is checked again on what was read
(the result's profile, or the profile named in the input of a run that has no result), which
also sorts out runs without the attribute.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from keel.contracts import RunResult
from keel.contracts.errors import InputError
from keel.contracts.names import RUNS_QUERY, SA_PROFILE
from keel.report.models import RunEnd, RunRecord

DEFAULT_CONCURRENCY = 16
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# How a run that ended without a RunResult is classified, by its Temporal status.
_ENDS: dict[WorkflowExecutionStatus, tuple[RunEnd, str]] = {
    WorkflowExecutionStatus.FAILED: ("failed", "internal"),
    WorkflowExecutionStatus.TERMINATED: ("terminated", "terminated"),
    WorkflowExecutionStatus.TIMED_OUT: ("timed_out", "timed_out"),
    WorkflowExecutionStatus.CANCELED: ("cancelled", "cancelled"),
}
# Failure class of a run that failed as a workflow, by the ApplicationError type it raised.
_WORKFLOW_FAILURES = {
    "InvalidInput": "invalid_input",
    "ProfileError": "config_error",
    "ConfigError": "config_error",
    "UpstreamUnavailable": "upstream_unavailable",
}


def parse_time(text: str, option: str, now: datetime) -> datetime:
    """``30m`` / ``24h`` / ``7d`` / ``2w`` before ``now``, ``now``, or an ISO-8601 time
    (a time without an offset is UTC; a bare date is its midnight UTC)."""
    value = text.strip()
    if value.lower() == "now":
        return now
    match = _DURATION.match(value)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{option} {text!r} is neither a duration (30m, 24h, 7d, 2w) nor an ISO-8601 time"
            " (2025-06-01 or 2025-06-01T12:00:00Z)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def visibility_time(moment: datetime) -> str:
    """RFC 3339 in UTC, as Temporal's visibility filters expect it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def visibility_query(since: datetime, until: datetime, extra: str | None = None) -> str:
    """Closed agent and pipeline runs whose close time is in [since, until], ANDed with ``extra``.

    Continued-as-new executions are links of a chain, not finished runs: left out.
    """
    query = (
        f"{RUNS_QUERY}"
        " AND ExecutionStatus != 'Running' AND ExecutionStatus != 'ContinuedAsNew'"
        f" AND CloseTime >= '{visibility_time(since)}' AND CloseTime <= '{visibility_time(until)}'"
    )
    return f"{query} AND ({extra.strip()})" if extra and extra.strip() else query


def profile_filter(profile: str) -> str:
    """The visibility filter for runs of ``profile``: ``KeelProfile``, upserted when a run
    starts, or no ``KeelProfile`` at all (input that could not be read, runs started before the
    attribute existed); :func:`collect` then checks those by the profile they name."""
    quoted = profile.replace("\\", "\\\\").replace("'", "\\'")
    return f"({SA_PROFILE} = '{quoted}' OR {SA_PROFILE} IS NULL)"


def workflow_failure_class(cause: BaseException | None) -> str:
    """Class of a run that failed as a workflow (no RunResult): from the error's type."""
    if isinstance(cause, ApplicationError):
        return _WORKFLOW_FAILURES.get(cause.type or "", "internal")
    return "internal"


@dataclass
class Collected:
    runs: list[RunRecord]
    truncated: bool
    unreadable: int


async def _input_profile(client: Client, handle: WorkflowHandle[Any, RunResult]) -> str | None:
    """The profile named in the run's input (first history event)."""
    async for event in handle.fetch_history_events(page_size=1):
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            return None
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        try:
            values = await client.data_converter.decode(payloads)
        except (ValueError, TypeError, RuntimeError):
            return None
        first = values[0] if values else None
        profile = first.get("profile") if isinstance(first, dict) else None
        return profile if isinstance(profile, str) else None
    return None


async def _ended_run(
    client: Client, handle: WorkflowHandle[Any, RunResult], execution: WorkflowExecution
) -> RunRecord:
    """A run that ended without a RunResult: classified by its status (and failure type)."""
    status = execution.status or WorkflowExecutionStatus.FAILED
    end, failure = _ENDS.get(status, _ENDS[WorkflowExecutionStatus.FAILED])
    if status == WorkflowExecutionStatus.FAILED:
        try:
            await handle.result(follow_runs=False)
        except WorkflowFailureError as exc:
            failure = workflow_failure_class(exc.cause)
    return RunRecord(
        workflow_id=execution.id,
        run_id=execution.run_id,
        profile=await _input_profile(client, handle),
        end=end,
        failure_class=failure,
        start_time=execution.start_time,
        close_time=execution.close_time,
    )


async def read_run(client: Client, execution: WorkflowExecution) -> RunRecord | None:
    """The run's record, or None when it cannot be read: its result does not decode into a
    ``RunResult``, or its history is gone (retention may delete it after it was listed)."""
    handle = client.get_workflow_handle(
        execution.id, run_id=execution.run_id, result_type=RunResult
    )
    try:
        if execution.status != WorkflowExecutionStatus.COMPLETED:
            return await _ended_run(client, handle, execution)
        result = await handle.result(follow_runs=False)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    except ValueError:  # the payload did not validate as a RunResult (pydantic)
        return None
    return RunRecord.of_result(
        execution.id,
        result,
        run_id=execution.run_id,
        start_time=execution.start_time,
        close_time=execution.close_time,
    )


async def collect(
    client: Client,
    query: str,
    *,
    limit: int,
    profile: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Collected:
    """List up to ``limit`` runs matching ``query`` (and :func:`profile_filter`), read them
    ``concurrency`` at a time, keep those of ``profile`` (if given)."""
    if profile is not None:
        query = f"{query} AND {profile_filter(profile)}"
    executions: list[WorkflowExecution] = []
    async for execution in client.list_workflows(query, limit=limit + 1):
        executions.append(execution)
    truncated = len(executions) > limit
    gate = asyncio.Semaphore(concurrency)

    async def read(execution: WorkflowExecution) -> RunRecord | None:
        async with gate:
            return await read_run(client, execution)

    records = await asyncio.gather(*(read(e) for e in executions[:limit]))
    runs = [r for r in records if r is not None and (profile is None or r.profile == profile)]
    return Collected(runs=runs, truncated=truncated, unreadable=records.count(None))
