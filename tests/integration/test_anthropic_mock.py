"""The Anthropic provider against a third-party mock of the Messages API: fakellm (PyPI), run
as its own HTTP server, so Keel's Anthropic wire is not only tested against Keel's own
simulator. The same provider tests as against the simulator (tests/integration/
test_llm_provider.py): parallel tool uses, a text answer, tool results read by the other side,
rate limits and overload retryable, a rejected request not.

fakellm picks the answer by model name and by the tool results it reads
(tests/integration/fakellm/anthropic.yaml). Its conversation state is keyed by the first user
message, so every test sends its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from temporalio.exceptions import ApplicationError

from activities.providers.anthropic import AnthropicProvider
from keel.contracts import ChatMessage, ChatRequest, ChatResponse, ModelSettings, ToolSpec
from keel.procs import free_port, python_argv, spawn, stop, wait_http
from tests.helpers import REPO

CONFIG = Path(__file__).parent / "fakellm" / "anthropic.yaml"
TOOLS = [
    ToolSpec(server="support_desk", name="get_order",
             input_schema={"type": "object", "properties": {"order_id": {"type": "string"}}}),
    ToolSpec(server="knowledge", name="search_knowledge",
             input_schema={"type": "object", "properties": {"query": {"type": "string"}}}),
]  # fmt: skip


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """fakellm serving the rules of CONFIG; yields its Anthropic base URL (with /v1)."""
    port = free_port()
    log = Path(tmp_path_factory.mktemp("fakellm")) / "fakellm.log"
    argv = python_argv("-m", "fakellm.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                       "--config", str(CONFIG))  # fmt: skip
    child = spawn("fakellm", argv, log, cwd=REPO)
    try:
        wait_http(child, f"http://127.0.0.1:{port}/_fakellm/stats", timeout=30)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(child)


def request(base_url: str, model: str, *extra: ChatMessage) -> ChatRequest:
    messages = [
        ChatMessage(role="system", content="You are a support agent."),
        ChatMessage(role="user", content=f"ORD-1042 arrived damaged. ({uuid.uuid4().hex})"),
        *extra,
    ]
    settings = ModelSettings(name=model, base_url=base_url, provider="anthropic")
    return ChatRequest(model=settings, messages=messages, tools=TOOLS,
                       conversation_id=f"mock-{uuid.uuid4().hex}")  # fmt: skip


async def chat(req: ChatRequest) -> ChatResponse:
    async with httpx2.AsyncClient() as http:
        return await AnthropicProvider(http).chat(req, "sk-ant-test")


async def failed(req: ChatRequest) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await chat(req)
    assert "\n" not in info.value.message
    return info.value


async def test_parallel_tool_uses_and_usage_are_parsed(mock_url: str) -> None:
    response = await chat(request(mock_url, "mock-agent"))
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_order", '{"order_id": "ORD-1042"}'),
        ("search_knowledge", '{"query": "refund policy"}'),
    ]
    assert all(c.id.startswith("toolu_") for c in response.tool_calls)
    assert response.finish_reason == "tool_calls"
    assert response.content is not None  # fakellm says something before its calls, too
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0


async def test_tool_results_are_read_by_the_other_side(mock_url: str) -> None:
    first = request(mock_url, "mock-agent")
    calls = (await chat(first)).tool_calls
    results = [ChatMessage(role="tool", tool_call_id=c.id, content=f'{{"status": "shipped",'
                           f' "call": "{c.name}"}}') for c in calls]  # fmt: skip
    turn = [ChatMessage(role="assistant", tool_calls=calls), *results]
    second = first.model_copy(update={"messages": [*first.messages, *turn]})
    response = await chat(second)
    assert response.content is not None and "has shipped" in response.content
    assert response.tool_calls == [] and response.finish_reason == "stop"


async def test_a_text_answer_ends_the_turn(mock_url: str) -> None:
    response = await chat(request(mock_url, "mock-text"))
    assert response.content == "Hello from a third-party mock."
    assert response.finish_reason == "stop"


@pytest.mark.parametrize("model", ["mock-429", "mock-529"])
async def test_rate_limits_and_overload_are_retryable(mock_url: str, model: str) -> None:
    error = await failed(request(mock_url, model))
    assert error.non_retryable is False and error.type == "LLMHttpError"
    assert f"HTTP {model[-3:]}" in error.message and "(mock)" in error.message


async def test_a_rejected_request_is_not_retried(mock_url: str) -> None:
    error = await failed(request(mock_url, "mock-400"))
    assert error.non_retryable is True and error.type == "LLMRequestRejected"
    assert "HTTP 400" in error.message and "bad request (mock)" in error.message
