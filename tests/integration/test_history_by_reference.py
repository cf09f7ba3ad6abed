"""History carries each piece of content once, on the real stack (Temporal, simulator, MCP).

The worker keeps the conversation in its content store (the stack's ``<KEEL_HOME>/store``):
every ``keel.llm.chat`` input carries the previous transcript node and what is new, by
reference where the worker stored it (the answer, the tool result's view), so its size does
not grow with the run and history grows by the same bytes at every step. The simulator still
receives the whole conversation. A 50 MB tool result is stored whole, the model reads its cut,
and history holds neither the 50 MB nor a second copy of any tool result.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from keel.contracts import AgentInput, ChatRequest, Principal, RunResult, names
from keel.runtime.config import Settings
from keel.runtime.store.content import ContentStore
from keel.runtime.store.open import open_content_store
from keel.stack import Stack
from tests.conftest import MEDIA_CALLS
from tests.helpers import mcp_server, plain_events, private_worker, sim_requests, start
from tests.integration.media_server import LINE, page_text

PAGES = 30


def stack_store(stack: Stack) -> ContentStore:
    """The content store the stack's worker writes (same settings, same codec keys)."""
    return open_content_store(Settings.from_env(stack.config.worker_env()))


def payloads(message: Message) -> Iterator[Payload]:
    """Every ``Payload`` anywhere in ``message``."""
    for field, value in message.ListFields():
        entry = field.message_type
        if field.type != FieldDescriptor.TYPE_MESSAGE or entry is None:
            continue
        items = value.values() if entry.GetOptions().map_entry else (
            value if field.is_repeated else [value])  # fmt: skip
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, Message):
                yield from payloads(item)


def chat_inputs(events: list[HistoryEvent]) -> list[tuple[int, bytes]]:
    """(event index, input bytes) of every scheduled ``keel.llm.chat``, in order."""
    found = []
    for index, event in enumerate(events):
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        attrs = event.activity_task_scheduled_event_attributes
        if attrs.activity_type.name == names.ACTIVITY_LLM_CHAT:
            found.append((index, b"".join(p.data for p in attrs.input.payloads)))
    return found


def escaped(text: str) -> bytes:
    """``text`` as it appears inside a JSON payload."""
    return json.dumps(text)[1:-1].encode()


async def test_a_long_run_carries_the_conversation_by_reference(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "long_pages", task="Read the whole archive.")
    result = await handle.result()
    assert result.status == "completed", result.error
    assert (result.model_calls, result.tool_calls) == (PAGES + 1, PAGES)

    events = await plain_events(client, handle)
    inputs = chat_inputs(events)
    assert len(inputs) == PAGES + 1
    first = ChatRequest.model_validate_json(inputs[0][1])
    assert first.prior is None and [m.role for m in first.messages] == ["system", "user"]
    later = [ChatRequest.model_validate_json(data) for _, data in inputs[1:]]
    for request in later:
        assert request.prior is not None
        assert [m.role for m in request.messages] == ["assistant", "tool"]
        assert all(m.content_ref is not None and m.content is None for m in request.messages)
    sizes = [len(data) for _, data in inputs]
    assert max(sizes) < 20 * 1024, f"a chat input carries content: {sizes}"
    assert sizes[-1] <= 2 * sizes[1], f"chat inputs grow with the run: {sizes}"

    # History grows by about the same bytes at every step (a quadratic history would add
    # twice as much per step at the end as at the start).
    total = [sum(e.ByteSize() for e in events[:index]) for index, _ in inputs]
    per_step = [after - before for before, after in itertools.pairwise(total)]
    early, late = per_step[1:11], per_step[-10:]
    assert sum(late) <= 1.25 * sum(early), f"history bytes per step: {per_step}"

    # Each tool result is in history once (its activity result), and the model saw it whole.
    data = b"".join(p.data for e in events for p in payloads(e))
    for page in (1, 17, PAGES):
        assert data.count(escaped(page_text(page, 20))) == 1, f"page {page}"
    last = sim_requests(stack, handle.id)[-1]["body"]["messages"]
    tools = [m["content"] for m in last if m["role"] == "tool"]
    assert tools == [page_text(page, 20) for page in range(1, PAGES + 1)]
    assert [m["content"] for m in last if m["role"] == "assistant"][:2] == [
        "Reading page 1.",
        "Reading page 2.",
    ]

    # Each tool step's record references the result's view in the content store.
    store = stack_store(stack)
    records = [s for s in result.steps if s.kind == "tool"]
    assert len({s.content_ref.digest for s in records if s.content_ref}) == PAGES
    stored = json.loads(await store.get(records[4].content_ref))  # type: ignore[arg-type]
    assert stored == {"content": page_text(5, 20), "images": []}


async def test_a_50_mb_tool_result_is_stored_and_the_model_reads_its_cut(
    client: Client, stack: Stack, tmp_path: Path
) -> None:
    calls = tmp_path / MEDIA_CALLS
    with mcp_server("media-http", "tests.integration.media_server", tmp_path, "--transport",
                    "http", "--insecure-no-auth", "--calls", str(calls)) as url:  # fmt: skip
        async with private_worker(stack, "huge", {"KEEL_MCP_MEDIA": url}) as queue:
            handle = await client.start_workflow(
                "AgentWorkflow",
                AgentInput(profile="huge_tool_result", task="Dump the archive.",
                           principal=Principal(id="tester", roles=["agent"])),
                id=f"test-huge-{uuid.uuid4().hex[:10]}",
                task_queue=queue,
                result_type=RunResult,
            )  # fmt: skip
            result = await handle.result()
    assert result.status == "completed", result.error

    megabytes_50 = 50 * 1024 * 1024
    tool = next(s for s in result.steps if s.kind == "tool")
    assert tool.content_ref is not None and tool.content_ref.size > megabytes_50
    full: dict[str, Any] = json.loads(await stack_store(stack).get(tool.content_ref))
    text = full["content"][0]["text"]
    assert len(text) == megabytes_50 and text.startswith(LINE)

    seen = next(m for m in sim_requests(stack, handle.id)[-1]["body"]["messages"]
                if m["role"] == "tool")["content"]  # fmt: skip
    assert seen.startswith(LINE)
    assert seen.endswith(
        f"bytes not shown (the server's max_result_bytes is 65,536); the full result is stored"
        f" as {tool.content_ref.digest}]"
    )
    assert len(seen.encode()) < 65536 + 300
    events = await plain_events(client, handle)
    assert sum(e.ByteSize() for e in events) < 1_000_000, "history holds the 50 MB"


async def test_a_huge_task_reaches_the_model_cut_and_is_stored_whole(
    client: Client, stack: Stack
) -> None:
    task = "Summarise this log.\n" + "2026-09-01 12:00:00 INFO request served in 12 ms\n" * 30_000
    handle = await start(client, "cut_message", task=task)
    result = await handle.result()
    assert result.status == "completed", result.error

    request = sim_requests(stack, handle.id)[0]["body"]
    seen = request["messages"][1]["content"]
    size = len(task.encode())
    assert size > 1_400_000
    head, _, marker = seen.rpartition("\n[message cut: ")
    assert head == task[:1_000_000]
    assert marker.startswith(f"showing 1,000,000 of {size:,} bytes; full content stored as sha256:")
    digest = marker.removesuffix("]").rpartition(" ")[2]
    stored = json.loads(await stack_store(stack).get(digest))
    assert stored["content"] == task
