"""The chat activity's conversation by reference, against a real content store in a directory.

The provider is a recorder (the unit tier talks to no model): what it receives is exactly what
a provider would. Each step's request carries the previous node and what is new, as the
workflow sends it; the activity stores the new contents and the node before the call, hands the
provider the whole conversation, and answers with the node and the answer's reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.llm import LLMActivities
from activities.transcripts import CONTENT_MISSING, cut_content
from keel.contracts import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    ContentRef,
    ModelSettings,
    ToolCall,
    message_content_bytes,
    ref_for,
)
from keel.runtime.codec import EncryptionCodec
from keel.runtime.store.blobs import LocalBlobs
from keel.runtime.store.content import ContentStore, content_key
from keel.runtime.store.transcripts import load_chain

MODEL = ModelSettings(name="sim/recorded", base_url="http://127.0.0.1:9/v1")
PAGE = "page text " * 2000  # 20 KB


class Recorder:
    """A provider that keeps every request and answers with a fixed text and call."""

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []

    async def chat(self, request: ChatRequest, api_key: str | None) -> ChatResponse:
        self.requests.append(request)
        step = len(self.requests)
        call = ToolCall(id=f"c{step}", name="read_page", arguments=f'{{"page": {step}}}')
        return ChatResponse(content=f"reading page {step}", tool_calls=[call], model=MODEL.name)


def store_at(root: Path) -> ContentStore:
    """A worker's store over ``root`` (a fresh one has a cold cache)."""
    return ContentStore(LocalBlobs(root), EncryptionCodec(None))


def blobs(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def request(prior: ContentRef | None, *messages: ChatMessage, model: ModelSettings = MODEL
            ) -> ChatRequest:  # fmt: skip
    return ChatRequest(model=model, messages=list(messages), prior=prior, conversation_id="run-1",
                       step=1)  # fmt: skip


def by_reference(message: ChatMessage, ref: ContentRef) -> ChatMessage:
    return message.model_copy(update={"content": None, "images": [], "content_ref": ref})


START = (ChatMessage(role="system", content="You read."), ChatMessage(role="user", content="Go."))


async def run_steps(llm: LLMActivities, steps: int) -> list[ChatResponse]:
    """``steps`` model calls as the workflow makes them: the answer by reference, the tool
    result inline, each request after the previous node."""
    responses = [await llm.chat(request(None, *START))]
    for step in range(1, steps):
        last = responses[-1]
        assert last.transcript is not None and last.content_ref is not None
        answer = ChatMessage(role="assistant", content=last.content, tool_calls=last.tool_calls)
        tool = ChatMessage(role="tool", tool_call_id=last.tool_calls[0].id, content=f"{step}{PAGE}")
        responses.append(
            await llm.chat(request(last.transcript, by_reference(answer, last.content_ref), tool))
        )
    return responses


async def test_the_provider_gets_the_whole_conversation_from_the_chain(tmp_path: Path) -> None:
    recorder = Recorder()
    llm = LLMActivities(recorder, store=store_at(tmp_path))
    responses = await run_steps(llm, 4)

    last = recorder.requests[-1]
    assert last.prior is None
    assert [m.role for m in last.messages] == ["system", "user", *["assistant", "tool"] * 3]
    assert all(m.content_ref is None for m in last.messages)
    assert last.messages[2].content == "reading page 1"
    assert last.messages[3].content == f"1{PAGE}"
    assert last.messages[6].tool_calls[0].id == "c3"
    # a cold worker rebuilds the same conversation from the last node
    chain = await load_chain(store_at(tmp_path), responses[-1].transcript)
    assert [m.content_ref for m in chain] == [
        ref_for(message_content_bytes(m)) for m in last.messages
    ]


async def test_nodes_are_small_and_each_content_is_stored_once(tmp_path: Path) -> None:
    llm = LLMActivities(Recorder(), store=store_at(tmp_path))
    responses = await run_steps(llm, 6)

    store = store_at(tmp_path)
    for response in responses[1:]:
        assert response.transcript is not None
        node = await store.get_json(response.transcript)
        assert node["v"] == 1 and len(node["messages"]) == 2
        assert response.transcript.size < 1500, "a node holds references, not contents"
    node = await store.get_json(responses[-1].transcript)  # type: ignore[arg-type]
    assert node["count"] == 12 and node["parent"] == responses[-2].transcript.digest  # type: ignore[union-attr]
    stored = sum(p.stat().st_size for p in blobs(tmp_path))
    assert stored < 6 * len(PAGE) + 20_000, "each tool result is stored once, not per step"


async def test_a_retried_call_stores_nothing_new(tmp_path: Path) -> None:
    llm = LLMActivities(Recorder(), store=store_at(tmp_path))
    first = await llm.chat(request(None, *START))
    tool = ChatMessage(role="tool", tool_call_id="c1", content=PAGE)
    step = request(first.transcript, tool)
    again = await llm.chat(step)
    before = blobs(tmp_path)
    retried = await LLMActivities(Recorder(), store=store_at(tmp_path)).chat(step)
    assert blobs(tmp_path) == before
    assert retried.transcript == again.transcript


async def test_missing_content_is_a_typed_failure_that_is_not_retried(tmp_path: Path) -> None:
    llm = LLMActivities(Recorder(), store=store_at(tmp_path))
    first = await llm.chat(request(None, *START))
    system_ref = ref_for(message_content_bytes(START[0]))
    (tmp_path / content_key(system_ref.digest)).unlink()

    cold = LLMActivities(Recorder(), store=store_at(tmp_path))
    with pytest.raises(ApplicationError) as info:
        await cold.chat(request(first.transcript, ChatMessage(role="user", content="More.")))
    assert info.value.type == CONTENT_MISSING and info.value.non_retryable
    assert system_ref.digest.removeprefix("sha256:") in info.value.message
    assert "\n" not in info.value.message


async def test_altered_content_and_nodes_are_refused(tmp_path: Path) -> None:
    llm = LLMActivities(Recorder(), store=store_at(tmp_path))
    first = await llm.chat(request(None, *START))
    assert first.transcript is not None
    node_blob = tmp_path / content_key(first.transcript.digest)
    node_blob.write_bytes(b"not a sealed blob")
    with pytest.raises(ApplicationError) as info:
        await LLMActivities(Recorder(), store=store_at(tmp_path)).chat(request(first.transcript))
    assert info.value.type == CONTENT_MISSING and info.value.non_retryable
    assert "is not a sealed blob" in info.value.message

    # valid JSON stored under the digest of something that is not a node
    store = store_at(tmp_path)
    not_a_node = await store.put_json({"content": "hello", "images": []})
    with pytest.raises(ApplicationError) as info:
        await LLMActivities(Recorder(), store=store).chat(request(not_a_node))
    assert info.value.type == CONTENT_MISSING
    assert "is not a transcript node" in info.value.message


async def test_a_reference_on_a_worker_without_a_store_is_a_config_error() -> None:
    ref = ref_for(b"{}")
    with pytest.raises(ApplicationError) as info:
        await LLMActivities(Recorder()).chat(request(ref, ChatMessage(role="user", content="x")))
    assert info.value.type == "ConfigError" and info.value.non_retryable
    # without a store and without references: the old behaviour, nothing stored
    response = await LLMActivities(Recorder()).chat(request(None, *START))
    assert response.transcript is None and response.content_ref is None


async def test_a_huge_message_reaches_the_model_cut_and_is_stored_whole(tmp_path: Path) -> None:
    recorder = Recorder()
    llm = LLMActivities(recorder, store=store_at(tmp_path))
    task = "x" * 1999 + "é" * 2_500_000  # 5 MB; byte 2,000 is the first half of an "é"
    model = MODEL.model_copy(update={"max_message_bytes": 2_000})
    await llm.chat(request(None, START[0], ChatMessage(role="user", content=task), model=model))

    seen = recorder.requests[0].messages[1].content or ""
    ref = ref_for(message_content_bytes(ChatMessage(role="user", content=task)))
    assert seen == (
        "x" * 1999
        + f"\n[message cut: showing 1,999 of 5,001,999 bytes; full content stored as {ref.digest}]"
    )
    stored = json.loads(await store_at(tmp_path).get(ref))
    assert stored["content"] == task
    assert recorder.requests[0].messages[0].content == "You read."  # small ones are whole


def test_a_cut_keeps_whole_characters() -> None:
    assert (
        cut_content("aé" * 10, 2, None)
        == "a\n[message cut: showing 1 of 30 bytes; full content not kept]"
    )
    assert cut_content("short", 5, None) == "short"
