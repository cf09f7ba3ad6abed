"""The content store in S3, against a real S3-compatible server (moto over HTTP, started by
the suite): the blobs and the content store, the start-up check, and a real Temporal run whose
5 MB task goes through the SDK's S3 driver (history holds a reference, the bucket the payload,
encrypted)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid

import pytest

from keel.contracts import AgentInput, Principal, RunResult
from keel.procs import free_port
from keel.runtime.config import Settings
from keel.runtime.store.blobs import ContentMissing, StoreError
from keel.runtime.store.content import content_key
from keel.runtime.store.open import open_blobs, open_content_store, verify_store
from keel.runtime.store.payloads import S3PayloadDriver, external_storage
from keel.runtime.store.s3 import S3Blobs
from keel.stack import Stack
from tests.helpers import (
    REPO,
    assert_stored_reference,
    connect_stack,
    plain_history,
    private_worker,
    s3_objects,
    stack_settings,
)

MARKER = "S3-PLAINTEXT-MARKER-51c2"


def s3_settings(stack: Stack, s3_store: dict[str, str]) -> Settings:
    return stack_settings(stack, s3_store)


async def test_content_round_trip_in_s3(stack: Stack, s3_store: dict[str, str]) -> None:
    store = open_content_store(s3_settings(stack, s3_store))
    assert isinstance(store.blobs, S3Blobs)
    data = f"{MARKER} {uuid.uuid4()}".encode()
    ref = await store.put(data, "text/plain")
    key = f"suite/{content_key(ref.digest)}"
    first = s3_objects(s3_store)[key]
    assert MARKER.encode() not in first  # sealed by the stack's codec keys
    # Read by another process's store (no cache), and written again: the object stays.
    other = open_content_store(s3_settings(stack, s3_store))
    assert await other.get(ref.digest) == data
    await other.blobs.put(content_key(ref.digest), b"other bytes")
    assert s3_objects(s3_store)[key] == first


async def test_missing_content_in_s3_is_content_missing(
    stack: Stack, s3_store: dict[str, str]
) -> None:
    store = open_content_store(s3_settings(stack, s3_store))
    with pytest.raises(ContentMissing, match=r"holds no suite/content/"):
        await store.get("sha256:" + "0" * 64)
    assert not await store.blobs.exists(content_key("sha256:" + "0" * 64))


async def test_the_start_up_check_names_what_is_wrong(
    stack: Stack, s3_store: dict[str, str]
) -> None:
    settings = s3_settings(stack, s3_store)
    assert (await verify_store(settings)).startswith("s3://keel-test-store/suite/ at http://")
    no_bucket = stack_settings(stack, {**s3_store, "KEEL_STORE": "s3://no-such-bucket/x"})
    with pytest.raises(StoreError, match=r"no-such-bucket/x/ .*the bucket does not exist"):
        await verify_store(no_bucket)
    down = f"http://127.0.0.1:{free_port()}"
    unreachable = stack_settings(stack, {**s3_store, "KEEL_STORE_ENDPOINT_URL": down})
    with pytest.raises(StoreError, match=f"at {down}: opening the bucket failed: cannot connect"):
        await verify_store(unreachable)
    blobs = open_blobs(unreachable)
    with pytest.raises(StoreError, match="reading suite/content/x failed: cannot connect"):
        await blobs.get("content/x")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KEEL_STORE_ENDPOINT_URL": "http://127.0.0.1:{port}"}, "cannot connect"),
        ({"KEEL_STORE": "s3://no-such-bucket"}, "the bucket does not exist"),
        ({"KEEL_STORE": "s3://Not_A_Bucket/x"}, "'Not_A_Bucket' is not an S3 bucket name"),
    ],
    ids=["unreachable", "no-bucket", "malformed"],
)
def test_the_worker_refuses_to_start_on_a_bad_store(
    s3_store: dict[str, str], env: dict[str, str], message: str
) -> None:
    values = {k: v.format(port=free_port()) for k, v in env.items()}
    out = subprocess.run(
        [sys.executable, str(REPO / "worker.py")],
        env={"PATH": "/usr/bin:/bin", **s3_store, **values},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 2, out.stderr
    [line] = [line for line in out.stderr.splitlines() if line.startswith("keel worker:")]
    assert "content store" in line or "KEEL_STORE" in line
    assert message in line
    assert "Traceback" not in out.stderr


async def test_a_5mb_task_goes_through_the_s3_driver(
    stack: Stack, s3_store: dict[str, str]
) -> None:
    settings = s3_settings(stack, s3_store)
    storage = external_storage(settings)
    assert storage is not None and isinstance(storage.drivers[0], S3PayloadDriver)
    before = set(s3_objects(s3_store))
    # Random words: the codec compresses before it encrypts, and a repeated phrase would shrink
    # under the store's threshold; this task stays about 4 MB sealed.
    task = f"{MARKER} summarise this: " + base64.b64encode(os.urandom(3_750_000)).decode()
    async with private_worker(stack, "s3", env=s3_store) as queue:
        client = await connect_stack(stack, s3_store)  # keel.connect with the S3 store
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(profile="quick", task=task, principal=Principal(id="tester")),
            id=f"test-s3-{uuid.uuid4().hex[:10]}",
            task_queue=queue,
            result_type=RunResult,
        )
        result = await handle.result()
    assert isinstance(result, RunResult) and result.profile == "quick"
    # The model read a bounded view of the task (model.max_message_bytes), the run completed.
    assert result.status == "completed", result.error
    history = await plain_history(client, handle)
    raw = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert_stored_reference(raw, "aws.s3driver")
    assert MARKER.encode() not in b"".join(e.SerializeToString() for e in history.events)
    new = {k: v for k, v in s3_objects(s3_store).items() if k not in before}
    payloads = [k for k in new if k.startswith("suite/payloads/v0/ns/default/wt/AgentWorkflow/")]
    assert payloads, sorted(new)
    assert max(len(new[k]) for k in payloads) > 3_500_000  # the task, whole (compressed, sealed)
    assert not any(MARKER.encode() in blob for blob in new.values())  # stored encrypted
