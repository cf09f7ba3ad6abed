"""The provider against the wire-format variants real OpenAI-compatible servers send, played by
the simulator over real HTTP (the simulator alone, as a subprocess: no Temporal needed to see
what the provider makes of an answer; parser unit tests: tests/unit/activities/providers/).

Valid variants (content as text parts, object arguments, ``Retry-After`` as an HTTP date) are
accepted; invalid ones (a stream-only server, a cut-off body, negative usage) are one readable,
non-retryable ``model_error``, so Temporal does not retry them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest
from temporalio.exceptions import ApplicationError

from activities.providers.openai_compat import OpenAICompatProvider
from keel.contracts import ChatResponse
from keel.procs import free_port, python_argv, spawn, stop, wait_http
from tests.helpers import REPO
from tests.unit.activities.providers.test_openai_compat import request
from workflows.failures import classify


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One simulator with the bundled scenarios; yields its OpenAI base URL."""
    port = free_port()
    log = Path(tmp_path_factory.mktemp("sim-wire")) / "simulator.log"
    child = spawn("simulator", python_argv("-m", "simulator", "--port", str(port)), log, cwd=REPO)
    try:
        wait_http(child, f"http://127.0.0.1:{port}/healthz", timeout=30)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(child)


async def chat(base_url: str, model: str) -> ChatResponse:
    async with httpx2.AsyncClient() as http:
        return await OpenAICompatProvider(http).chat(request(base_url, model), None)


async def refused(base_url: str, model: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await chat(base_url, model)
    error = info.value
    assert error.non_retryable is True, f"{model}: {error.type} would be retried"
    assert classify(error, "model")[0] == "model_error"
    assert "\n" not in error.message
    return error


async def test_content_as_text_parts_is_the_answer(sim_url: str) -> None:
    response = await chat(sim_url, "sim/wire_content_parts")
    assert response.content == "Your refund of 42.00 USD for ORD-1042 is on its way."


async def test_object_arguments_become_the_json_text(sim_url: str) -> None:
    response = await chat(sim_url, "sim/wire_object_arguments")
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_order", '{"order_id": "ORD-1042"}')
    ]


async def test_retry_after_as_an_http_date_sets_the_retry_delay(sim_url: str) -> None:
    with pytest.raises(ApplicationError) as info:
        await chat(sim_url, "sim/retry_after_date")
    assert info.value.non_retryable is False
    assert "HTTP 429" in info.value.message
    delay = info.value.next_retry_delay
    assert delay is not None and timedelta(0) < delay <= timedelta(seconds=4)


async def test_a_stream_only_server_is_a_model_error(sim_url: str) -> None:
    error = await refused(sim_url, "sim/wire_stream_only")
    assert error.type == "LLMBadResponse"
    assert "text/event-stream" in error.message


async def test_a_truncated_body_is_a_model_error(sim_url: str) -> None:
    error = await refused(sim_url, "sim/wire_truncated")
    assert error.type == "LLMBadResponse"
    assert "not valid JSON" in error.message


async def test_negative_usage_is_a_typed_model_error(sim_url: str) -> None:
    error = await refused(sim_url, "sim/bad_usage")
    assert error.type == "LLMBadUsage"
    assert "usage.prompt_tokens=-1000000" in error.message


def test_the_simulator_records_what_it_received(sim_url: str) -> None:
    conversation = "wire-recorded-1"
    body = {"model": "sim/quick_answer", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"X-Keel-Conversation": conversation}
    with httpx2.Client(base_url=sim_url, timeout=10.0) as http:
        assert http.post("/chat/completions", json=body, headers=headers).status_code == 200
        recorded = http.get(f"/sim/conversations/{conversation}/requests").json()
        missing = http.get("/sim/conversations/never-seen/requests")
    assert [r["turn"] for r in recorded["requests"]] == [0]
    assert recorded["requests"][0]["body"]["messages"][0]["content"] == "hi"
    assert missing.status_code == 404
