"""Both providers (OpenAI chat completions, Anthropic Messages) and the activities' pre-flight,
against the real simulator: the same tests for both wires (the parts that need no simulator:
tests/unit/activities/test_llm.py and tests/unit/activities/providers/; the Anthropic provider
against a third-party mock: tests/integration/test_anthropic_mock.py)."""

from __future__ import annotations

from datetime import timedelta

import httpx2
import pytest
from temporalio.exceptions import ApplicationError

from activities.profiles import ProfileActivities
from activities.providers.registry import ProviderRegistry
from keel.contracts import ChatRequest, ChatResponse
from keel.contracts.model_settings import ProviderName
from keel.procs import free_port
from keel.runtime.config import Settings
from keel.stack import Stack
from tests.conftest import TEST_PROFILES
from tests.unit.activities.providers.test_openai_compat import PROVIDERS
from tests.unit.activities.providers.test_openai_compat import request as make_request


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> ProviderName:
    """Each test runs once per wire."""
    wire: ProviderName = request.param
    return wire


def request(base_url: str, model: str, provider: ProviderName) -> ChatRequest:
    return make_request(base_url, model, provider=provider)


async def chat(req: ChatRequest, api_key: str | None = None) -> ChatResponse:
    async with httpx2.AsyncClient() as http:
        return await ProviderRegistry.over(http).chat(req, api_key)


async def test_tool_calls_and_usage_are_parsed(stack: Stack, provider: ProviderName) -> None:
    response = await chat(request(stack.config.llm_base_url, "sim/support_demo", provider))
    assert [c.name for c in response.tool_calls] == [
        "search_customers",
        "get_order",
        "search_knowledge",
    ]
    assert response.tool_calls[1].arguments == '{"order_id": "ORD-1042"}'
    assert len({c.id for c in response.tool_calls}) == 3 and all(response.tool_calls)
    assert response.finish_reason == "tool_calls"
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    assert response.usage.cached_tokens == response.usage.cache_write_tokens == 0  # no repeat


async def test_a_text_answer_ends_the_turn(stack: Stack, provider: ProviderName) -> None:
    response = await chat(request(stack.config.llm_base_url, "sim/quick_answer", provider))
    assert response.content and not response.tool_calls
    assert response.finish_reason == "stop"


async def test_429_is_retryable_and_carries_retry_after(
    stack: Stack, provider: ProviderName
) -> None:
    with pytest.raises(ApplicationError) as info:
        await chat(request(stack.config.llm_base_url, "sim/retry_429", provider))
    assert info.value.non_retryable is False
    assert info.value.next_retry_delay == timedelta(seconds=1)
    assert "HTTP 429" in info.value.message


async def test_500_is_retryable(stack: Stack, provider: ProviderName) -> None:
    with pytest.raises(ApplicationError) as info:
        await chat(request(stack.config.llm_base_url, "sim/server_error", provider))
    assert info.value.non_retryable is False
    assert info.value.type == "LLMHttpError"


async def test_unknown_model_is_non_retryable_with_readable_message(
    stack: Stack, provider: ProviderName
) -> None:
    with pytest.raises(ApplicationError) as info:
        await chat(request(stack.config.llm_base_url, "sim/does_not_exist", provider))
    assert info.value.non_retryable is True
    assert info.value.type == "LLMRequestRejected"
    assert "HTTP 404" in info.value.message and "not found" in info.value.message


async def test_profile_preflight(stack: Stack) -> None:
    async with httpx2.AsyncClient() as http:
        ok = ProfileActivities(
            Settings.from_env(
                {
                    "KEEL_PROFILES_PATH": str(TEST_PROFILES),
                    "KEEL_LLM_BASE_URL": stack.config.llm_base_url,
                }
            ),
            http,
        )
        profile = await ok.load("quick")
        assert profile.model.base_url == stack.config.llm_base_url

        with pytest.raises(ApplicationError) as unknown_server:
            await ok.load("mcp_down")  # uses 'offline_desk', which this worker does not know
        assert unknown_server.value.non_retryable is True
        assert "offline_desk" in unknown_server.value.message

        dead = f"http://127.0.0.1:{free_port()}/v1"
        unreachable = ProfileActivities(
            Settings.from_env(
                {"KEEL_PROFILES_PATH": str(TEST_PROFILES), "KEEL_LLM_BASE_URL": dead}
            ),
            http,
        )
        with pytest.raises(ApplicationError) as down:
            await unreachable.load("quick")
        assert dead in down.value.message and "unreachable" in down.value.message
