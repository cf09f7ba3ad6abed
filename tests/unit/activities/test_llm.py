"""The chat activity's pre-flight: a model whose API key variable is unset fails at once,
non-retryable, naming the variable. The endpoint is one where nothing listens, so were the
key not checked first, the call would fail as a retryable transport error instead."""

from __future__ import annotations

import httpx2
import pytest
from temporalio.exceptions import ApplicationError

from activities.llm import LLMActivities
from activities.providers.openai_compat import OpenAICompatProvider
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
