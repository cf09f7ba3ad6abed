"""The OpenAI-compatible provider and the activities' pre-flight, against the real simulator
(the parts that need no simulator: tests/unit/activities/test_llm.py and
tests/unit/activities/providers/)."""

from __future__ import annotations

from datetime import timedelta

import httpx2
import pytest
from temporalio.exceptions import ApplicationError

from activities.profiles import ProfileActivities
from activities.providers.openai_compat import OpenAICompatProvider
from keel.contracts import ChatRequest
from keel.procs import free_port
from keel.runtime.config import Settings
from keel.stack import Stack
from tests.conftest import TEST_PROFILES
from tests.unit.activities.providers.test_openai_compat import request


async def chat(req: ChatRequest, api_key: str | None = None):
    async with httpx2.AsyncClient() as http:
        return await OpenAICompatProvider(http).chat(req, api_key)


async def test_tool_calls_and_usage_are_parsed(stack: Stack) -> None:
    response = await chat(request(stack.config.llm_base_url, "sim/support_demo"))
    assert [c.name for c in response.tool_calls] == [
        "search_customers",
        "get_order",
        "search_knowledge",
    ]
    assert response.tool_calls[1].arguments == '{"order_id": "ORD-1042"}'
    assert response.finish_reason == "tool_calls"
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0


async def test_429_is_retryable_and_carries_retry_after(stack: Stack) -> None:
    with pytest.raises(ApplicationError) as info:
        await chat(request(stack.config.llm_base_url, "sim/retry_429"))
    assert info.value.non_retryable is False
    assert info.value.next_retry_delay == timedelta(seconds=1)
    assert "HTTP 429" in info.value.message


async def test_500_is_retryable(stack: Stack) -> None:
    with pytest.raises(ApplicationError) as info:
        await chat(request(stack.config.llm_base_url, "sim/server_error"))
    assert info.value.non_retryable is False
    assert info.value.type == "LLMHttpError"


async def test_unknown_model_is_non_retryable_with_readable_message(stack: Stack) -> None:
    with pytest.raises(ApplicationError) as info:
        await chat(request(stack.config.llm_base_url, "sim/does_not_exist"))
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
