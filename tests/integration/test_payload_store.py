"""The embedded default: payloads over KEEL_PAYLOAD_THRESHOLD go to ``<home>/store/payloads``
through Keel's LocalStorageDriver, on the normal test stack (its worker is a subprocess, the
client is ``keel.connect``: both use the stack's store)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from keel.contracts import RunResult
from keel.runtime.store.payloads import LOCAL_DRIVER
from keel.stack import Stack
from tests.helpers import assert_stored_reference, connect_stack, plain_history, start

MARKER = "LOCAL-PLAINTEXT-MARKER-9d41"


def stored(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in root.glob("*") if p.is_file()}


async def test_a_5mb_task_is_stored_and_history_holds_a_reference(stack: Stack) -> None:
    payloads = stack.config.home / "store" / "payloads"
    before = set(stored(payloads))
    client = await connect_stack(stack)
    # Random words: the codec compresses before it encrypts, and a repeated phrase would shrink
    # under the store's threshold; this task stays about 4 MB sealed.
    task = f"{MARKER} summarise this: " + base64.b64encode(os.urandom(3_750_000)).decode()
    handle = await start(client, "quick", task)
    result = await handle.result()
    assert isinstance(result, RunResult) and result.profile == "quick"
    # The model read a bounded view of the task (model.max_message_bytes), the run completed.
    assert result.status == "completed", result.error
    history = await plain_history(client, handle)
    started = history.events[0].workflow_execution_started_event_attributes
    assert_stored_reference(started.input.payloads[0], LOCAL_DRIVER)
    assert MARKER.encode() not in b"".join(e.SerializeToString() for e in history.events)
    new = {name: blob for name, blob in stored(payloads).items() if name not in before}
    assert (
        max(len(blob) for blob in new.values()) > 3_500_000
    )  # the task, whole (compressed, sealed)
    assert not any(MARKER.encode() in blob for blob in new.values())  # stored encrypted
