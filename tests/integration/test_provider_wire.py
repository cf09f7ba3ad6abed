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

from activities.providers.registry import ProviderRegistry
from keel.contracts import ChatMessage, ChatResponse, ToolCall
from keel.contracts.model_settings import ProviderName
from keel.procs import free_port, python_argv, spawn, stop, wait_http
from tests.helpers import REPO
from tests.unit.activities.providers.test_openai_compat import PROVIDERS, request
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


async def chat(base_url: str, model: str, provider: ProviderName = "openai") -> ChatResponse:
    async with httpx2.AsyncClient() as http:
        req = request(base_url, model, provider=provider)
        return await ProviderRegistry.over(http).chat(req, None)


async def refused(base_url: str, model: str, provider: ProviderName = "openai") -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await chat(base_url, model, provider)
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


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_retry_after_as_an_http_date_sets_the_retry_delay(
    sim_url: str, provider: ProviderName
) -> None:
    with pytest.raises(ApplicationError) as info:
        await chat(sim_url, "sim/retry_after_date", provider)
    assert info.value.non_retryable is False
    assert "HTTP 429" in info.value.message
    delay = info.value.next_retry_delay
    assert delay is not None and timedelta(0) < delay <= timedelta(seconds=4)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_only_server_is_a_model_error(sim_url: str, provider: ProviderName) -> None:
    error = await refused(sim_url, "sim/wire_stream_only", provider)
    assert error.type == "LLMBadResponse"
    assert "text/event-stream" in error.message


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_truncated_body_is_a_model_error(sim_url: str, provider: ProviderName) -> None:
    error = await refused(sim_url, "sim/wire_truncated", provider)
    assert error.type == "LLMBadResponse"
    assert "not valid JSON" in error.message


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_negative_usage_is_a_typed_model_error(sim_url: str, provider: ProviderName) -> None:
    error = await refused(sim_url, "sim/bad_usage", provider)
    assert error.type == "LLMBadUsage"
    field = "input_tokens" if provider == "anthropic" else "prompt_tokens"
    assert f"usage.{field}=-1000000" in error.message


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


async def test_anthropic_tool_results_answer_the_calls_of_the_turn_before(sim_url: str) -> None:
    """A second turn on the Anthropic wire: the parallel calls of the first turn, answered by
    one user turn of tool results the simulator validates as strictly as Anthropic."""
    first = await chat(sim_url, "sim/support_demo", "anthropic")
    req = request(sim_url, "sim/support_demo", provider="anthropic")
    calls = [ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in first.tool_calls]
    req.messages += [ChatMessage(role="assistant", tool_calls=calls)]
    req.messages += [ChatMessage(role="tool", tool_call_id=c.id, content='{"ok": true}')
                     for c in calls]  # fmt: skip
    async with httpx2.AsyncClient() as http:
        second = await ProviderRegistry.over(http).chat(req, None)
    assert second.tool_calls or second.content
    recorded = httpx2.get(f"{sim_url}/sim/conversations/{req.conversation_id}/requests").json()
    body = recorded["requests"][-1]["body"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert [b["tool_use_id"] for b in body["messages"][2]["content"]] == [c.id for c in calls]


def test_the_anthropic_wire_refuses_what_anthropic_refuses(sim_url: str) -> None:
    headers = {"anthropic-version": "2023-06-01"}
    orphan = {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_9", "content": "ok"}]}  # fmt: skip
    body = {"model": "sim/quick_answer", "max_tokens": 10, "messages": [orphan]}
    with httpx2.Client(base_url=sim_url, timeout=10.0) as http:
        answer = http.post("/messages", json=body, headers=headers)
        unversioned = http.post("/messages", json=body)
    assert answer.status_code == 400
    error = answer.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "unexpected `tool_use_id`" in error["error"]["message"]
    assert unversioned.status_code == 400 and "anthropic-version" in unversioned.text
