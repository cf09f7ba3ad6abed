"""The chat activity's pre-flight: a model whose API key variable is unset fails at once,
non-retryable, naming the variable. The endpoint is one where nothing listens, so were the
key not checked first, the call would fail as a retryable transport error instead."""

from __future__ import annotations

import httpx2
import pytest
from temporalio.exceptions import ApplicationError

from activities.llm import LLMActivities, check_response_size
from activities.providers.openai_compat import OpenAICompatProvider
from keel.contracts import ChatResponse, Usage
from tests.unit.activities.providers.test_openai_compat import dead_url, request


async def test_missing_api_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEEL_TEST_UNSET_KEY", raising=False)
    async with httpx2.AsyncClient() as http:
        llm = LLMActivities(OpenAICompatProvider(http))
        req = request(dead_url(), "sim/quick_answer", "KEEL_TEST_UNSET_KEY")
        with pytest.raises(ApplicationError) as info:
            await llm.chat(req)
    assert info.value.non_retryable is True
    assert "KEEL_TEST_UNSET_KEY" in info.value.message


def test_an_answer_over_max_response_bytes_fails_for_good_with_its_usage() -> None:
    req = request(dead_url(), "sim/huge_answer")
    req.model = req.model.model_copy(update={"max_response_bytes": 2048})
    small = ChatResponse(content="x" * 100, model="m", usage=Usage(input_tokens=5))
    check_response_size(req, small)  # within the limit: nothing happens
    big = ChatResponse(content="x" * 5000, model="m", usage=Usage(input_tokens=7, output_tokens=9))
    with pytest.raises(ApplicationError) as info:
        check_response_size(req, big)
    assert info.value.non_retryable is True
    assert info.value.type == "PayloadTooLarge"
    assert "max_response_bytes=2,048" in info.value.message
    assert Usage.model_validate(info.value.details[0]) == big.usage
