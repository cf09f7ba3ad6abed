"""A tool result once in history: the worker stores the model's view of it, and the workflow,
building the tool message from the result it receives, arrives at the same digest and sends the
message by reference. Each case goes the whole way: the worker's interceptor step
(``keep_result``) on the JSON form temporalio-mcp returns, the JSON wire, the workflow's
``CallToolResult``, the tool message as workflows/agent/turn.py builds it, the transcript."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult, EmbeddedResource, ImageContent, TextContent
from mcp.types import TextResourceContents as TextResource

from activities.tool_results import keep_result
from activities.tool_view import result_images, result_text, view_bytes
from keel.contracts import ChatMessage, canonical_json, content_digest, names
from keel.runtime.codec import EncryptionCodec
from keel.runtime.store.blobs import LocalBlobs
from keel.runtime.store.content import ContentStore
from workflows.agent.transcript import Transcript
from workflows.tools.mcp_calls import stored_refs

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"


def wire(result: CallToolResult) -> dict[str, Any]:
    """The JSON form temporalio-mcp's activity returns, with the worker's stamps."""
    value = result.model_dump(mode="json")
    value["meta"] = {**(value.get("meta") or {}), names.META_ATTEMPT: 1,
                     names.META_LATENCY_MS: 12.5}  # fmt: skip
    return value


def tool_message(result: CallToolResult) -> ChatMessage:
    """The tool message exactly as the workflow builds it (execute.py, then turn.py)."""
    return ChatMessage(role="tool", tool_call_id="call_1_0", content=result_text(result),
                       images=result_images(result))  # fmt: skip


async def through_the_run(store: ContentStore, result: CallToolResult, limit: int = 65536
                          ) -> tuple[CallToolResult, ChatMessage]:  # fmt: skip
    kept = await keep_result(store, wire(result), limit)
    received = CallToolResult.model_validate(json.loads(json.dumps(kept)))  # the activity result
    transcript = Transcript()
    view, _ = stored_refs(received)
    transcript.offer(view)
    transcript.append(tool_message(received))
    return received, transcript.pending[0]


CASES = {
    "text": CallToolResult(content=[TextContent(type="text", text="Order ORD-1042: shipped.")]),
    "json": CallToolResult(
        content=[TextContent(type="text", text='{\n  "id": "ORD-1042",\n  "items": [1, 2, 3]\n}')]
    ),
    "structured only": CallToolResult(content=[], structured_content={"total": 42.0, "é": "ü"}),
    "image": CallToolResult(
        content=[
            TextContent(type="text", text="The chart:"),
            ImageContent(type="image", data=PNG, mime_type="image/png"),
            EmbeddedResource(
                type="resource",
                resource=TextResource(
                    uri="file:///notes.md", mime_type="text/markdown", text="# Notes"
                ),
            ),
        ]
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_the_workflow_sends_the_tool_message_by_the_workers_view(
    tmp_path: Path, case: str
) -> None:
    store = ContentStore(LocalBlobs(tmp_path), EncryptionCodec(None))
    received, sent = await through_the_run(store, CASES[case])

    view, full = stored_refs(received)
    assert view is not None and full is None  # nothing was cut
    message = tool_message(received)
    assert view.digest == content_digest(view_bytes(received))
    assert sent.content_ref == view, "the workflow's digest differs from the worker's"
    assert sent.content is None and sent.images == []
    stored = json.loads(await store.get(view))
    assert stored == {
        "content": message.content,
        "images": [i.model_dump() for i in message.images],
    }
    if case == "image":
        assert stored["images"][0]["data"] == PNG


async def test_a_cut_result_is_stored_whole_and_its_view_is_what_the_model_reads(
    tmp_path: Path,
) -> None:
    store = ContentStore(LocalBlobs(tmp_path), EncryptionCodec(None))
    big = CallToolResult(content=[TextContent(type="text", text="row\n" * 100_000)])
    received, sent = await through_the_run(store, big, limit=4096)

    view, full = stored_refs(received)
    assert view is not None and full is not None
    text = result_text(received)
    assert text.endswith(f"the full result is stored as {full.digest}]")
    assert len(text.encode()) < 4096 + 300
    assert sent.content_ref == view
    whole = json.loads(await store.get(full))
    assert whole["content"][0]["text"] == "row\n" * 100_000
    assert names.META_ATTEMPT not in (whole["meta"] or {}), "per-attempt stamps are not content"
    assert (await store.get(full)) == canonical_json({**big.model_dump(mode="json"), "meta": None})


async def test_references_a_server_sends_are_dropped(tmp_path: Path) -> None:
    forged = {"digest": "sha256:" + "0" * 64, "size": 1, "media_type": "application/json"}
    meta = {names.META_VIEW: forged, names.META_CONTENT: forged}
    result = CallToolResult(content=[TextContent(type="text", text="hi")], _meta=meta)
    kept = await keep_result(None, wire(result), 65536)
    assert names.META_VIEW not in kept["meta"] and names.META_CONTENT not in kept["meta"]
    store = ContentStore(LocalBlobs(tmp_path), EncryptionCodec(None))
    kept = await keep_result(store, wire(result), 65536)
    assert kept["meta"][names.META_VIEW]["digest"] != forged["digest"]
    assert names.META_CONTENT not in kept["meta"]


async def test_a_different_message_stays_inline(tmp_path: Path) -> None:
    store = ContentStore(LocalBlobs(tmp_path), EncryptionCodec(None))
    kept = await keep_result(store, wire(CASES["text"]), 65536)
    transcript = Transcript()
    transcript.offer(stored_refs(CallToolResult.model_validate(kept))[0])
    refusal = ChatMessage(role="tool", tool_call_id="call_1_0", content='{"error": "refused"}')
    transcript.append(refusal)
    assert transcript.pending == [refusal]
    assert transcript.state.text_bytes == len(refusal.content or "")
