"""Both providers where no endpoint answers: a transport error, retryable (the simulator's
answers, HTTP errors included, are in tests/integration/test_llm_provider.py). Nothing listens
on the port, so nothing is started and the connection is refused at once."""

from __future__ import annotations

import uuid

import httpx2
import pytest
from temporalio.exceptions import ApplicationError

from activities.providers.registry import ProviderRegistry
from keel.contracts import ChatMessage, ChatRequest, ModelSettings, ToolSpec
from keel.contracts.model_settings import ProviderName
from keel.procs import free_port

PROVIDERS: list[ProviderName] = ["openai", "anthropic"]
MESSAGES = [
    ChatMessage(role="system", content="You are a support agent."),
    ChatMessage(role="user", content="ORD-1042 arrived damaged."),
]
TOOL = ToolSpec(server="support_desk", name="get_order", input_schema={"type": "object"})


def request(
    base_url: str, model: str, api_key_env: str = "", provider: ProviderName = "openai"
) -> ChatRequest:
    settings = ModelSettings(
        name=model, base_url=base_url, api_key_env=api_key_env, provider=provider
    )
    return ChatRequest(
        model=settings,
        messages=MESSAGES,
        tools=[TOOL],
        conversation_id=f"provider-test-{uuid.uuid4().hex}",
    )


def dead_url() -> str:
    """A base URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/v1"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unreachable_endpoint_is_retryable_transport_error(provider: ProviderName) -> None:
    url = dead_url()
    with pytest.raises(ApplicationError) as info:
        async with httpx2.AsyncClient() as http:
            req = request(url, "sim/quick_answer", provider=provider)
            await ProviderRegistry.over(http).chat(req, None)
    assert info.value.non_retryable is False
    assert info.value.type == "LLMTransportError"
    assert url in info.value.message
    assert ("/messages" if provider == "anthropic" else "/chat/completions") in info.value.message
