"""The simulator over real HTTP, started as a subprocess exactly as the stack and demo start it
(its start-up errors, which need no server: tests/unit/simulator/test_main.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest

from keel.procs import Child, free_port, python_argv, spawn, stop, wait_http
from tests.helpers import REPO

CONV = "X-Keel-Conversation"


def _start(log_dir: Path, *extra: str) -> tuple[Child, str]:
    port = free_port()
    child = spawn(
        "simulator",
        python_argv("-m", "simulator", "--port", str(port), *extra),
        log_dir / f"simulator-{port}.log",
        cwd=REPO,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(child, f"{base}/healthz", timeout=30)
    return child, base


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One simulator with the bundled scenarios for the whole module; yields its base URL."""
    child, base = _start(tmp_path_factory.mktemp("sim-logs"))
    try:
        yield base
    finally:
        stop(child)


@pytest.fixture
def client(sim: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=sim, timeout=10.0) as http:
        yield http


def _messages(user: str = "My shoes arrived damaged, order ORD-1042.") -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": user},
    ]


def _chat(
    http: httpx2.Client,
    model: str,
    messages: list[dict[str, Any]],
    conv: str | None = None,
    **extra: Any,
) -> httpx2.Response:
    headers = {CONV: conv} if conv else {}
    body = {"model": model, "messages": messages, **extra}
    return http.post("/v1/chat/completions", json=body, headers=headers)


def _append_turn(messages: list[dict[str, Any]], response: httpx2.Response) -> None:
    """Append the assistant message and a tool result per call, as an agent loop would."""
    message = response.json()["choices"][0]["message"]
    messages.append(message)
    for call in message.get("tool_calls") or []:
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": '{"ok": true}'})


def test_health_and_models_list_every_bundled_scenario(client: httpx2.Client) -> None:
    expected = {f"sim/{p.stem}" for p in (REPO / "simulator" / "scenarios").glob("*.toml")}
    assert {"sim/support_demo", "sim/retry_429", "sim/loop_forever", "sim/expensive"} <= expected
    assert client.get("/healthz").json() == {"status": "ok", "scenarios": len(expected)}
    models = client.get("/v1/models").json()
    assert models["object"] == "list"
    actors = {"sim/actor", "sim/actor-small", "sim/actor-medium", "sim/actor-large"}
    assert {m["id"] for m in models["data"]} == expected | actors


def test_support_demo_plays_three_tool_calls_then_advances_by_turn(client: httpx2.Client) -> None:
    conv = f"demo-{uuid.uuid4().hex}"
    messages = _messages()
    first = _chat(client, "sim/support_demo", messages, conv)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "sim/support_demo"
    assert body["id"] == f"chatcmpl-sim-{conv}-0-1"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_0_0", "call_0_1", "call_0_2"]
    assert [
        (c["type"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls
    ] == [
        ("function", "search_customers", {"query": "maria.lopez@example.com"}),
        ("function", "get_order", {"order_id": "ORD-1042"}),
        ("function", "search_knowledge", {"query": "refund policy damaged item"}),
    ]

    # The same turn asked again (a retry) answers the same calls with the same ids.
    again = _chat(client, "sim/support_demo", messages, conv).json()
    assert again["choices"][0]["message"]["tool_calls"] == calls

    _append_turn(messages, first)
    second = _chat(client, "sim/support_demo", messages, conv).json()
    (call,) = second["choices"][0]["message"]["tool_calls"]
    assert call["id"] == "call_1_0"
    assert call["function"]["name"] == "get_article"
    assert json.loads(call["function"]["arguments"]) == {"article_id": "refund-policy"}

    _append_turn(messages, _chat(client, "sim/support_demo", messages, conv))
    final = _chat(client, "sim/support_demo", messages, conv).json()["choices"][0]
    assert final["finish_reason"] == "stop"
    assert "tool_calls" not in final["message"]
    for fact in ("Maria", "ORD-1042", "42.00", "refund-policy", "5\u20137 business days"):
        assert fact in final["message"]["content"]

    _append_turn(messages, _chat(client, "sim/support_demo", messages, conv))
    past_end = _chat(client, "sim/support_demo", messages, conv).json()["choices"][0]
    assert past_end["message"]["content"] == "(scenario support_demo has no more turns)"

    counters = client.get(f"/v1/sim/conversations/{conv}").json()
    assert counters == {
        "0": {"requests": 2, "completed": 2},
        "1": {"requests": 2, "completed": 2},
        "2": {"requests": 2, "completed": 2},
        "3": {"requests": 1, "completed": 1},
    }


def test_usage_is_positive_and_grows_with_the_prompt(client: httpx2.Client) -> None:
    def usage(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        response = _chat(client, "quick_answer", messages, f"usage-{uuid.uuid4().hex}", **extra)
        assert response.status_code == 200, response.text
        return response.json()["usage"]

    short = usage(_messages("hi"))
    long = usage(_messages("hi " * 400))
    tools = [
        {"type": "function", "function": {"name": "get_order", "parameters": {"type": "object"}}}
    ]
    with_tools = usage(_messages("hi " * 400), tools=tools)
    assert short["prompt_tokens"] >= 1
    assert short["completion_tokens"] >= 1
    assert long["prompt_tokens"] > short["prompt_tokens"]
    assert with_tools["prompt_tokens"] > long["prompt_tokens"]
    assert long["completion_tokens"] == short["completion_tokens"]
    assert long["total_tokens"] == long["prompt_tokens"] + long["completion_tokens"]
    assert long["prompt_tokens_details"] == {"cached_tokens": 0}


def test_retry_429_fails_twice_with_retry_after_then_succeeds(client: httpx2.Client) -> None:
    conv = f"r429-{uuid.uuid4().hex}"
    responses = [_chat(client, "sim/retry_429", _messages(), conv) for _ in range(3)]
    assert [r.status_code for r in responses] == [429, 429, 200]
    for n, response in enumerate(responses[:2], start=1):
        assert response.headers["Retry-After"] == "1"
        error = response.json()["error"]
        assert error["type"] == "rate_limit_error"
        assert error["message"] == f"simulated 429 (fault {n} of turn 0)"
    assert len(responses[2].json()["choices"][0]["message"]["tool_calls"]) == 3
    assert client.get(f"/v1/sim/conversations/{conv}").json() == {
        "0": {"requests": 3, "completed": 1}
    }
    assert client.get("/v1/sim/conversations").json()[conv] == {
        "0": {"requests": 3, "completed": 1}
    }


def test_server_error_fails_once_then_succeeds(client: httpx2.Client) -> None:
    conv = f"r500-{uuid.uuid4().hex}"
    first, second = (_chat(client, "sim/server_error", _messages(), conv) for _ in range(2))
    assert first.status_code == 500
    assert first.json()["error"]["type"] == "server_error"
    assert second.status_code == 200


async def test_concurrent_conversations_do_not_interfere(sim: str) -> None:
    async def run(http: httpx2.AsyncClient, conv: str) -> list[int]:
        statuses = []
        for _ in range(3):
            response = await http.post(
                "/v1/chat/completions",
                json={"model": "sim/retry_429", "messages": _messages()},
                headers={CONV: conv},
            )
            statuses.append(response.status_code)
        return statuses

    convs = [f"par-{i}-{uuid.uuid4().hex}" for i in range(2)]
    async with httpx2.AsyncClient(base_url=sim, timeout=10.0) as http:
        results = await asyncio.gather(*(run(http, conv) for conv in convs))
        assert results == [[429, 429, 200], [429, 429, 200]]
        for conv in convs:
            counters = (await http.get(f"/v1/sim/conversations/{conv}")).json()
            assert counters == {"0": {"requests": 3, "completed": 1}}


def test_conversation_id_is_derived_from_the_prompt_without_header(client: httpx2.Client) -> None:
    user = f"derived {uuid.uuid4().hex}"
    first = _chat(client, "retry_429", _messages(user))  # bare scenario name works too
    second = _chat(client, "retry_429", _messages(user))
    other = _chat(client, "retry_429", _messages(user + " (another run)"))
    assert [first.status_code, second.status_code, other.status_code] == [429, 429, 429]
    assert second.json()["error"]["message"] == "simulated 429 (fault 2 of turn 0)"
    assert other.json()["error"]["message"] == "simulated 429 (fault 1 of turn 0)"
    third = _chat(client, "retry_429", _messages(user))
    assert third.status_code == 200
    conv = third.json()["id"].split("-")[2]
    assert len(conv) == 16
    assert client.get(f"/v1/sim/conversations/{conv}").json() == {
        "0": {"requests": 3, "completed": 1}
    }


def test_unknown_model_is_404_model_not_found(client: httpx2.Client) -> None:
    response = _chat(client, "sim/nope", _messages())
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("model 'sim/nope' not found; available: sim/")
    assert "sim/support_demo" in error["message"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"model": "sim/quick_answer", "messages": [', "not valid JSON"),
        (b'["not", "an", "object"]', "JSON object"),
        (b'{"model": "sim/quick_answer"}', "messages"),
        (b'{"model": "sim/quick_answer", "messages": []}', "messages"),
        (b'{"model": "sim/quick_answer", "messages": [{"content": "no role"}]}', "role"),
        (
            b'{"model": "sim/quick_answer", "stream": true,'
            b' "messages": [{"role": "user", "content": "x"}]}',
            "stream",
        ),
    ],
)
def test_malformed_requests_are_400(client: httpx2.Client, content: bytes, needle: str) -> None:
    response = client.post(
        "/v1/chat/completions", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert needle in error["message"]


def test_malformed_tool_json_is_sent_verbatim(client: httpx2.Client) -> None:
    conv = f"raw-{uuid.uuid4().hex}"
    messages = _messages()
    first = _chat(client, "sim/malformed_tool_json", messages, conv)
    (call,) = first.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_order"
    assert call["function"]["arguments"] == '{"order_id": "ORD-10'
    with pytest.raises(json.JSONDecodeError):
        json.loads(call["function"]["arguments"])
    _append_turn(messages, first)
    (fixed,) = _chat(client, "sim/malformed_tool_json", messages, conv).json()["choices"][0][
        "message"
    ]["tool_calls"]
    assert json.loads(fixed["function"]["arguments"]) == {"order_id": "ORD-1042"}


def test_unknown_conversation_and_reset(client: httpx2.Client) -> None:
    assert client.get("/v1/sim/conversations/never-seen").status_code == 404
    conv = f"reset-{uuid.uuid4().hex}"
    assert _chat(client, "quick_answer", _messages(), conv).status_code == 200
    assert client.get(f"/v1/sim/conversations/{conv}").status_code == 200
    reset = client.post("/v1/sim/reset")
    assert reset.status_code == 200
    assert reset.json()["conversations_dropped"] >= 1
    assert client.get("/v1/sim/conversations").json() == {}
    assert client.get(f"/v1/sim/conversations/{conv}").status_code == 404


def test_webhook_sink_keeps_json_per_channel_until_reset(client: httpx2.Client) -> None:
    channel = f"hooks-{uuid.uuid4().hex}"
    other = f"hooks-{uuid.uuid4().hex}"
    assert client.get(f"/v1/sim/webhooks/{channel}").json() == {"channel": channel, "events": []}

    payloads = [{"kind": "approval_escalated", "approval_id": "apr-1-call_0_1"}, [1, "two"]]
    for n, payload in enumerate(payloads, start=1):
        posted = client.post(f"/v1/sim/webhooks/{channel}", json=payload)
        assert posted.status_code == 200, posted.text
        assert posted.json() == {"status": "ok", "channel": channel, "seq": n}
    assert client.post(f"/v1/sim/webhooks/{other}", json={"elsewhere": True}).status_code == 200

    listed = client.get(f"/v1/sim/webhooks/{channel}").json()
    assert listed["channel"] == channel
    assert [(e["seq"], e["body"]) for e in listed["events"]] == [(1, payloads[0]), (2, payloads[1])]
    for event in listed["events"]:
        received = datetime.fromisoformat(event["received_at"])
        assert abs((datetime.now(UTC) - received).total_seconds()) < 60
    assert [e["body"] for e in client.get(f"/v1/sim/webhooks/{other}").json()["events"]] == [
        {"elsewhere": True}
    ]

    bad = client.post(
        f"/v1/sim/webhooks/{channel}",
        content=b"not json {",
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 400
    assert "not valid JSON" in bad.json()["error"]["message"]
    assert len(client.get(f"/v1/sim/webhooks/{channel}").json()["events"]) == 2

    reset = client.post("/v1/sim/reset").json()
    assert reset["webhook_events_dropped"] >= 3
    for name in (channel, other):
        assert client.get(f"/v1/sim/webhooks/{name}").json() == {"channel": name, "events": []}


def test_hang_outlives_a_short_client_timeout(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "short_hang.toml").write_text(
        '[[turns]]\ncontent = "answered"\n[[turns.faults]]\nkind = "hang"\nseconds = 3\n'
    )
    child, base = _start(tmp_path, "--scenarios", str(scenarios))
    try:
        body = {"model": "sim/short_hang", "messages": _messages()}
        headers = {CONV: "hang-1"}
        with httpx2.Client(base_url=base, timeout=1.0) as http:
            with pytest.raises(httpx2.TimeoutException):
                http.post("/v1/chat/completions", json=body, headers=headers)
            answer = http.post("/v1/chat/completions", json=body, headers=headers)
            assert answer.status_code == 200
            assert answer.json()["choices"][0]["message"]["content"] == "answered"
            counters = http.get("/v1/sim/conversations/hang-1").json()
        assert counters == {"0": {"requests": 2, "completed": 1}}
    finally:
        stop(child)
