"""Small helpers shared by the integration tests (no fakes: they talk to the real stack)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.converter import DataConverter, PayloadCodec

from keel.client import connect
from keel.contracts import AgentInput, Principal, RunResult
from keel.procs import free_port, python_argv, spawn, stop, wait_http
from keel.runtime.codec import data_converter
from keel.runtime.config import Settings
from keel.runtime.store.payloads import external_storage
from keel.runtime.telemetry import Telemetry
from keel.stack import Stack

REPO = Path(__file__).resolve().parent.parent
TEST_PROFILES = REPO / "tests" / "profiles"
# Every tool of the support-desk MCP server, in its listing order.
DESK_TOOLS = (
    "search_customers",
    "get_customer",
    "list_orders",
    "get_order",
    "refund_order",
    "send_email",
    "update_ticket",
    "add_ticket_note",
    "create_ticket",
)
DEMO_TASK = "Hi, I'm Maria Lopez (maria.lopez@example.com). ORD-1042 arrived damaged. Refund?"


def keel_env(stack: Stack | None, temporal: str | None = None) -> dict[str, str]:
    """The environment of a ``keel`` command against ``stack`` (or ``temporal``), seeing the
    test profiles before the shipped ones."""
    env = dict(os.environ)
    if stack is not None:  # its keys: the codec keyring above all (payloads are encrypted)
        env.update(stack.config.client_env())
    env["KEEL_PROFILES_PATH"] = os.pathsep.join([str(TEST_PROFILES), str(REPO / "profiles")])
    env["TEMPORAL_ADDRESS"] = temporal or (stack.config.temporal_address if stack else "")
    return env


def keel(
    stack: Stack | None, *args: str, temporal: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``keel`` CLI as a user does: a subprocess, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "keel", *args],
        capture_output=True,
        text=True,
        env=keel_env(stack, temporal),
        cwd=REPO,
        timeout=120,
    )


async def start(
    client: Client, profile: str, task: str = DEMO_TASK, **extra: Any
) -> WorkflowHandle[Any, RunResult]:
    workflow_id = f"test-{profile}-{uuid.uuid4().hex[:10]}"
    agent_input = AgentInput(
        profile=profile, task=task, principal=Principal(id="tester", roles=["agent"]), **extra
    )
    return await client.start_workflow(
        "AgentWorkflow",
        agent_input,
        id=workflow_id,
        task_queue="agents",
        result_type=RunResult,
    )


async def run(client: Client, profile: str, task: str = DEMO_TASK, **extra: Any) -> RunResult:
    handle = await start(client, profile, task, **extra)
    return await handle.result()


def sim_turns(stack: Stack, conversation_id: str) -> dict[int, dict[str, int]]:
    """The simulator's request counters for one conversation (= workflow id), by turn."""
    url = f"{stack.config.llm_base_url}/sim/conversations/{conversation_id}"
    response = httpx2.get(url, timeout=5.0)
    if response.status_code == 404:
        return {}
    response.raise_for_status()
    body = response.json()
    turns = body.get("turns", body)
    return {int(turn): counts for turn, counts in turns.items()}


async def activity_intervals(
    handle: WorkflowHandle[Any, Any], activity_suffix: str
) -> list[tuple[float, float]]:
    """(started, completed) times in seconds of each completed activity whose type ends so."""
    scheduled: dict[int, str] = {}
    started: dict[int, float] = {}
    intervals: list[tuple[float, float]] = []
    async for event in handle.fetch_history_events():
        time = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs_s = event.activity_task_started_event_attributes
            started[attrs_s.scheduled_event_id] = time
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs_c = event.activity_task_completed_event_attributes
            if scheduled.get(attrs_c.scheduled_event_id, "").endswith(activity_suffix):
                intervals.append((started[attrs_c.scheduled_event_id], time))
    return intervals


@contextlib.contextmanager
def mcp_server(
    name: str, module: str, tmp: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """A real MCP server (``python -m module --port <free> *args``, a subprocess logging to
    ``tmp/<name>.log``), ready; yields its streamable-HTTP URL and stops it afterwards."""
    port = free_port()
    argv = python_argv("-m", module, "--port", str(port), *args)
    child = spawn(name, argv, tmp / f"{name}.log", env=env, cwd=REPO)
    try:
        wait_http(child, f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(child)


@contextlib.contextmanager
def desk_server(tmp: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real support-desk MCP server (subprocess, fresh seeded SQLite file under ``tmp``);
    yields its streamable-HTTP URL. It checks access tokens against the keys ``env`` names
    (``stack.config.server_env()`` for a worker of the stack, tests/auth.py's ``server_env()``
    for a test's own calls)."""
    with mcp_server(
        "desk", "mcp_servers.support_desk", tmp, "--db", str(tmp / "desk.db"), env=env
    ) as url:
        yield url


@contextlib.asynccontextmanager
async def private_worker(
    stack: Stack, prefix: str, env: dict[str, str] | None = None
) -> AsyncIterator[str]:
    """An in-process worker of ``stack`` (its settings and codec keys, the test profiles) on a
    task queue of its own, with the worker settings ``env`` changes; yields the task queue."""
    from worker import build_worker  # the composition root, only for tests that need a worker

    queue = f"{prefix}-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env({
        **stack.config.worker_env(),
        "KEEL_PROFILES_PATH": os.pathsep.join([str(TEST_PROFILES), str(REPO / "profiles")]),
        "KEEL_TASK_QUEUE": queue,
        **(env or {}),
    })  # fmt: skip
    # The worker takes its store from its client's converter: the settings' store.
    worker_client = await Client.connect(
        stack.config.temporal_address,
        data_converter=data_converter(settings.codec_keys, external_storage(settings)),
    )
    transport = httpx2.AsyncHTTPTransport(retries=0)
    async with (
        httpx2.AsyncClient(transport=transport) as http,
        build_worker(worker_client, settings, http),
    ):
        yield queue


def sim_requests(stack: Stack, conversation_id: str) -> list[dict[str, Any]]:
    """The request bodies the simulator received for one conversation (= workflow id), oldest
    first, each as ``{"turn": n, "body": {...}}`` (the simulator keeps the last 20)."""
    url = f"{stack.config.llm_base_url}/sim/conversations/{conversation_id}/requests"
    response = httpx2.get(url, timeout=10.0)
    response.raise_for_status()
    requests: list[dict[str, Any]] = response.json()["requests"]
    return requests


def stack_settings(stack: Stack, env: dict[str, str] | None = None) -> Settings:
    """The settings of a client of ``stack`` (its address, keys and content store), with the
    variables ``env`` changes."""
    return Settings.from_env({**stack.config.client_env(), **(env or {})})


def stack_converter(stack: Stack) -> DataConverter:
    """The data converter of ``stack``'s clients: its worker encrypts every payload with the
    stack's codec keyring, so a client must hold the same keys to read anything, and keeps
    large payloads in the stack's content store, so a client must use the same store."""
    settings = stack_settings(stack)
    return data_converter(settings.codec_keys, external_storage(settings))


async def connect_stack(stack: Stack, env: dict[str, str] | None = None) -> Client:
    """A client of ``stack`` as users connect (``keel.connect``): the stack's codec keys and
    content store, or what ``env`` changes (e.g. an S3 store)."""
    return await connect(stack_settings(stack, env), telemetry=Telemetry.disabled())


async def plain_history(client: Client, handle: WorkflowHandle[Any, Any]) -> WorkflowHistory:
    """The run's history with every payload decrypted by ``client``'s codec (raw history
    holds ``binary/encrypted`` payloads only)."""
    history = await handle.fetch_history()
    codec = client.data_converter.payload_codec
    if codec is not None:
        for event in history.events:
            await decode_payloads(event, codec)
    return history


async def plain_events(client: Client, handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return list((await plain_history(client, handle)).events)


async def decode_payloads(message: Message, codec: PayloadCodec) -> None:
    """Decode in place every ``Payload`` anywhere in ``message`` (fields, lists, maps)."""
    for field, value in message.ListFields():
        entry = field.message_type
        if field.type != FieldDescriptor.TYPE_MESSAGE or entry is None:
            continue
        if entry.GetOptions().map_entry:
            values = entry.fields_by_name["value"]
            if values.type == FieldDescriptor.TYPE_MESSAGE:
                for key in list(value):
                    await _decode_one(value[key], codec)
        elif field.is_repeated:
            for item in value:
                await _decode_one(item, codec)
        else:
            await _decode_one(value, codec)


async def _decode_one(message: Message, codec: PayloadCodec) -> None:
    if isinstance(message, Payload):
        [decoded] = await codec.decode([message])
        message.CopyFrom(decoded)
    else:
        await decode_payloads(message, codec)


def assert_stored_reference(payload: Payload, driver: str) -> None:
    """``payload`` (from history) is an external-storage reference of ``driver``, not data."""
    assert payload.metadata["encoding"] == b"json/protobuf"
    assert payload.metadata["messageType"] == b"temporal.api.sdk.v1.ExternalStorageReference"
    assert driver.encode() in payload.data
    assert payload.ByteSize() < 2_000


S3_BUCKET = "keel-test-store"
S3_PREFIX = "suite"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "keel-test",
    "AWS_SECRET_ACCESS_KEY": "keel-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def s3_server(tmp: Path, bucket: str = S3_BUCKET) -> Iterator[dict[str, str]]:
    """A real S3-compatible HTTP server (``moto_server``, a subprocess on a free port, logging
    to ``tmp/moto.log``) with ``bucket`` created; yields the environment of a Keel process
    whose content store is ``s3://bucket/suite`` there, and stops the server afterwards."""
    import boto3  # the dev extra; only the tests start an S3 server

    port = free_port()
    argv = python_argv("-m", "moto.server", "-H", "127.0.0.1", "-p", str(port))
    child = spawn("moto", argv, tmp / "moto.log", cwd=REPO)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_http(child, f"{endpoint}/moto-api/")
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        s3.create_bucket(Bucket=bucket)
        yield {
            "KEEL_STORE": f"s3://{bucket}/{S3_PREFIX}",
            "KEEL_STORE_ENDPOINT_URL": endpoint,
            **S3_CREDENTIALS,
        }
    finally:
        stop(child)


def s3_objects(env: dict[str, str]) -> dict[str, bytes]:
    """Every object of the bucket ``env`` (from :func:`s3_server`) names, by key."""
    import boto3

    bucket = env["KEEL_STORE"].removeprefix("s3://").partition("/")[0]
    s3 = boto3.client(
        "s3",
        endpoint_url=env["KEEL_STORE_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    objects: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            objects[entry["Key"]] = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
    return objects


async def run_chain(client: Client, workflow_id: str, first_run: str) -> list[list[HistoryEvent]]:
    """The history events of every run of a workflow id, first to last (continue-as-new)."""
    chain: list[list[HistoryEvent]] = []
    run_id: str | None = first_run
    while run_id:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        events = [event async for event in handle.fetch_history_events()]
        chain.append(events)
        last, run_id = events[-1], None
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return chain
