"""The OpenAI-compatible provider where no endpoint answers: a transport error, retryable
(the simulator's answers, HTTP errors included, are in tests/integration/test_llm_provider.py).
Nothing listens on the port, so nothing is started and the connection is refused at once."""

from __future__ import annotations

import uuid

import httpx2
import pytest
from temporalio.exceptions import ApplicationError

from activities.providers.openai_compat import OpenAICompatProvider
from keel.contracts import ChatMessage, ChatRequest, ModelSettings, ToolSpec
from keel.procs import free_port

MESSAGES = [
    ChatMessage(role="system", content="You are a support agent."),
    ChatMessage(role="user", content="ORD-1042 arrived damaged."),
]
TOOL = ToolSpec(server="support_desk", name="get_order", input_schema={"type": "object"})


def request(base_url: str, model: str, api_key_env: str = "") -> ChatRequest:
    return ChatRequest(
        model=ModelSettings(name=model, base_url=base_url, api_key_env=api_key_env),
        messages=MESSAGES,
        tools=[TOOL],
        conversation_id=f"provider-test-{uuid.uuid4().hex}",
    )


def dead_url() -> str:
    """A base URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/v1"


async def test_unreachable_endpoint_is_retryable_transport_error() -> None:
    url = dead_url()
    with pytest.raises(ApplicationError) as info:
        async with httpx2.AsyncClient() as http:
            await OpenAICompatProvider(http).chat(request(url, "sim/quick_answer"), None)
    assert info.value.non_retryable is False
    assert info.value.type == "LLMTransportError"
    assert url in info.value.message
