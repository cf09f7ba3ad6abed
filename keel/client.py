"""Starting, following and reading agent runs from Python (used by the CLI, demo and tests)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistoryEventFilterType,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from keel.contracts import (
    AgentInput,
    ClosedState,
    Resolution,
    ResolveOutcome,
    RunResult,
    RunStatus,
    Usage,
)
from keel.contracts.errors import ConfigError, InputError, KeelError, describe_validation_error
from keel.contracts.limits import LimitError, effective_limits
from keel.contracts.names import (
    PIPELINE_PREFIX,
    QUERY_STATUS,
    SA_PROFILE,
    SA_STATE,
    UPDATE_RESOLVE,
    WORKFLOW_TYPE,
)
from keel.runtime.codec import data_converter
from keel.runtime.config import Settings
from keel.runtime.pricing import resolve_price
from keel.runtime.profiles import load_profile
from keel.runtime.store.payloads import external_storage
from keel.runtime.telemetry import Telemetry

T = TypeVar("T")

SERVICE_NAME = "keel-cli"
_telemetry: list[Telemetry] = []


def client_telemetry() -> Telemetry:
    """This process's client-side telemetry, built once from the ``OTEL_*`` environment:
    traces only (a CLI's own metrics say nothing), each span exported as it ends because
    the CLI leaves with ``os._exit`` (no batch flush would run). A misconfiguration is a
    ConfigError, like any other bad setting."""
    if not _telemetry:
        _telemetry.append(Telemetry.from_env(SERVICE_NAME, synchronous=True, metrics=False))
    return _telemetry[0]


async def connect(settings: Settings, *, telemetry: Telemetry | None = None) -> Client:
    """Connect with Keel's data converter; an unreachable server is a ConfigError.

    The converter encrypts every payload when a codec keyring is configured
    (``Settings.codec_keys``: ``KEEL_CODEC_KEYS``, or ``.keel/keys/codec-keys.json`` after
    ``make up``; keel/runtime/codec.py), so what this client sends and reads is readable only
    to holders of the keys. A payload over ``settings.payload_threshold`` (a 5 MB task) goes
    to the content store ``settings.store`` and history holds a reference, so this client
    needs the worker's store (docs/operations.md, "Content store").

    With tracing configured (``OTEL_TRACES_EXPORTER``), the client carries Temporal's tracing
    interceptor: starting a run opens a ``StartWorkflow:AgentWorkflow`` span that the
    workflow's and activities' spans on the worker descend from.
    """
    options = (telemetry or client_telemetry()).connect_options()
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.namespace,
            data_converter=data_converter(settings.codec_keys, external_storage(settings)),
            **options,
        )
    except RuntimeError as exc:
        raise ConfigError(
            f"cannot reach Temporal at {settings.temporal_address} ({exc});"
            " start the stack with `make up` or set TEMPORAL_ADDRESS"
        ) from None


def build_input(raw: dict[str, object], settings: Settings) -> AgentInput:
    """Validate input and check it against the profile before anything is started."""
    try:
        agent_input = AgentInput.model_validate(raw)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, "input")) from None
    profile = load_profile(agent_input.profile, settings.profiles_path)
    resolve_price(profile.model)  # a model without a known price cannot run under a budget
    try:
        effective_limits(profile.limits, agent_input.limits)
    except LimitError as exc:
        raise InputError(str(exc)) from None
    return agent_input


def workflow_type(profile_name: str, settings: Settings) -> str:
    """The workflow type that runs a profile: its pipeline's (``keel.pipeline.<name>``), else
    ``AgentWorkflow`` — also when the profile is not on this client's search path (only the
    worker has it): a pipeline's profile started as an agent run fails at once, naming the
    workflow type to start (workflows/agent/start.py)."""
    try:
        pipeline = load_profile(profile_name, settings.profiles_path).pipeline
    except KeelError:
        return WORKFLOW_TYPE
    return f"{PIPELINE_PREFIX}{pipeline}" if pipeline else WORKFLOW_TYPE


async def start_run(
    client: Client, settings: Settings, agent_input: AgentInput, workflow_id: str | None = None
) -> WorkflowHandle[object, RunResult]:
    """Start the run of ``agent_input`` on the ``agents`` task queue: an ``AgentWorkflow``,
    or the pipeline workflow its profile names (``pipeline = "..."``).

    The handle names the workflow id, not the first run: a run that continues as new goes on
    in a new run of the same id, and the handle's queries, signals and updates reach the latest
    (``first_execution_run_id`` keeps it from reaching a later workflow that reuses the id).
    """
    run_id = workflow_id or f"agent-{agent_input.profile}-{uuid.uuid4().hex[:12]}"
    try:
        started = await client.start_workflow(
            workflow_type(agent_input.profile, settings),
            agent_input,
            id=run_id,
            task_queue=settings.task_queue,
            result_type=RunResult,
        )
    except RPCError as exc:
        raise KeelError(f"cannot start workflow {run_id}: {exc.message}") from None
    return client.get_workflow_handle(
        run_id, first_execution_run_id=started.first_execution_run_id, result_type=RunResult
    )


async def query_status(handle: WorkflowHandle[object, RunResult]) -> RunStatus:
    status: RunStatus = await handle.query(QUERY_STATUS, result_type=RunStatus)
    return status  # a query by name is typed Any; result_type is what makes it a RunStatus


# Runs Temporal closed without a result: the run could not say so itself (KeelState stays
# what it was: Temporal allows no search-attribute upsert on a closed run).
CLOSED_WITHOUT_RESULT: dict[WorkflowExecutionStatus, ClosedState] = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}


async def run_status(client: Client, workflow_id: str) -> RunStatus:
    """What ``keel status`` shows: the latest run's ``status`` query, with Temporal's
    execution status (``execution``) — and, for a run Temporal closed without a result
    (terminated by an operator or a server limit, timed out, cancelled), that state instead
    of the stale ``running`` the run last reported."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        raise rpc_error(exc, workflow_id, "status request") from None
    execution = description.status or WorkflowExecutionStatus.RUNNING
    closed = CLOSED_WITHOUT_RESULT.get(execution)
    latest = client.get_workflow_handle(workflow_id, run_id=description.run_id)
    try:
        status = await query_status(latest)
    except (RPCError, WorkflowQueryFailedError):
        if closed is None:
            raise
        attributes = description.search_attributes
        profile = attributes.get(SA_PROFILE) or [""]
        seen = f"KeelState {(attributes.get(SA_STATE) or ['?'])[0]}"
        status = RunStatus(state="running", profile=str(profile[0]), step=0, tool_calls=0,
                           usage=Usage(), last_event=seen)  # fmt: skip
    name = "".join(part.title() for part in execution.name.split("_"))
    update: dict[str, object] = {"execution": name}
    if closed is not None and status.state in ("running", "awaiting_approval",
                                               "awaiting_guidance"):  # fmt: skip
        why = await _close_reason(latest)
        update.update(state=closed, last_event=f"{closed}{why} (last seen: {status.last_event})")
    return status.model_copy(update=update)


async def _close_reason(handle: WorkflowHandle[object, RunResult]) -> str:
    """``: <reason>`` of a terminated run (its close event), else nothing."""
    try:
        async for event in handle.fetch_history_events(
            event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT
        ):
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
                reason = event.workflow_execution_terminated_event_attributes.reason
                return f": {reason}" if reason else ""
    except RPCError:
        return ""
    return ""


async def follow(
    handle: WorkflowHandle[object, RunResult],
    on_event: Callable[[RunStatus], None],
    interval: float = 0.3,
) -> RunResult:
    """Wait for the result, reporting each new ``last_event`` of the status query meanwhile."""
    result_task = asyncio.ensure_future(handle.result())
    last = ""
    try:
        while not result_task.done():
            try:
                status = await query_status(handle)
            except RPCError:
                status = None
            if status is not None and status.last_event != last:
                last = status.last_event
                on_event(status)
            await asyncio.wait({result_task}, timeout=interval)
        return result_task.result()
    finally:
        if not result_task.done():
            result_task.cancel()


async def resolve_call(client: Client, workflow_id: str, resolution: Resolution) -> ResolveOutcome:
    """Deliver a human's ``resolve`` of a lost write answer to run ``workflow_id``.

    A refusal by the update's validator (no such call, several unresolved and none named) is
    the human's mistake and becomes an ``InputError`` with the workflow's explanation.
    """
    return await human_update(
        client, workflow_id, UPDATE_RESOLVE, resolution, ResolveOutcome, "resolve"
    )


async def human_update(
    client: Client, workflow_id: str, update: str, payload: Any, result_type: type[T], what: str
) -> T:
    """Send a human's ``update`` (a decision, a resolve) and wait for its answer.

    A refusal by the update's validator is the human's mistake: an ``InputError`` carrying the
    workflow's explanation. Temporal answers NOT_FOUND both for an unknown id and for a run that
    already ended; both are said plainly.
    """
    handle = client.get_workflow_handle(workflow_id)
    try:
        outcome: T = await handle.execute_update(update, payload, result_type=result_type)
    except WorkflowUpdateFailedError as exc:
        why = getattr(exc.cause, "message", None) or str(exc.cause)
        raise InputError(f"run {workflow_id} refused the {what}: {why}") from None
    except RPCError as exc:
        raise rpc_error(exc, workflow_id, what) from None
    return outcome


def rpc_error(exc: RPCError, workflow_id: str, what: str) -> KeelError:
    """What Temporal's refusal of a request about run ``workflow_id`` means, in one line."""
    if exc.status == RPCStatusCode.NOT_FOUND:
        if "completed" in exc.message.lower():
            return InputError(f"run {workflow_id} has already finished; nothing is pending there")
        return InputError(f"no run with id {workflow_id}")
    return KeelError(f"Temporal refused the {what} for run {workflow_id}: {exc.message}")
