"""Circuit breakers: state machine on a fake clock, classification, and a real unreachable URL."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from activities.breaker import (
    CIRCUIT_OPEN_ERROR_TYPE,
    BreakerConfig,
    BreakerRegistry,
    CircuitBreaker,
    CircuitState,
)
from activities.llm import LLMActivities, llm_breakers, provider_failed
from activities.mcp import (
    ToolResultStamper,
    mcp_breakers,
    mcp_server_failed,
    mcp_server_of,
)
from activities.providers.base import http_error, transport_error
from activities.providers.openai_compat import OpenAICompatProvider
from keel.contracts import ChatMessage, ChatRequest, ModelSettings, names
from keel.contracts.errors import ConfigError
from keel.procs import free_port

CONFIG = BreakerConfig(failure_threshold=5, cooldown_seconds=30.0)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Boom(Exception):
    """A failure as the dependency would cause it."""


async def fail() -> None:
    raise Boom("connection refused")


async def ok() -> str:
    return "ok"


def breaker(clock: FakeClock, config: BreakerConfig = CONFIG, **kwargs: Any) -> CircuitBreaker:
    return CircuitBreaker("test:dep", config, label="test dependency", clock=clock, **kwargs)


async def trip(circuit: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            await circuit.call(fail)


async def rejected(call: Callable[[], Awaitable[Any]]) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await call()
    assert info.value.type == CIRCUIT_OPEN_ERROR_TYPE
    return info.value


# -- state machine ----------------------------------------------------------------------------


def transitions(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    """(circuit, "from -> to", why) of each ``breaker.transition`` event logged."""
    found = []
    for record in caplog.records:
        if record.name == "keel.breaker":
            assert record.getMessage() == "breaker.transition"
            f = record.keel  # type: ignore[attr-defined]
            found.append((f["circuit"], f"{f['from_state']} -> {f['to_state']}", f["why"]))
    return found


async def test_opens_exactly_at_threshold_and_logs_transition(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    circuit = breaker(clock)
    caplog.set_level(logging.INFO, logger="keel.breaker")

    await trip(circuit, 4)
    assert circuit.state is CircuitState.CLOSED
    assert await circuit.call(ok) == "ok"  # a success resets the consecutive count
    await trip(circuit, 4)
    assert circuit.state is CircuitState.CLOSED
    await trip(circuit, 1)
    assert circuit.state is CircuitState.OPEN

    lines = transitions(caplog)
    assert len(lines) == 1
    assert lines[0][:2] == ("test:dep", "closed -> open")
    assert lines[0][2].startswith("after 5 failures")
    assert caplog.records[-1].levelno == logging.WARNING


async def test_open_circuit_fails_fast_with_remaining_cooldown() -> None:
    clock = FakeClock()
    circuit = breaker(clock)
    await trip(circuit, 5)
    clock.advance(12.3)
    reached: list[bool] = []

    async def tracked() -> None:
        reached.append(True)

    error = await rejected(lambda: circuit.call(tracked))

    assert reached == []
    assert error.non_retryable is False
    assert error.next_retry_delay is not None
    assert error.next_retry_delay.total_seconds() == pytest.approx(17.7)
    assert error.message == (
        "circuit for test dependency is open after 5 consecutive failures"
        " (last: Boom: connection refused); next probe in 17.7s"
    )
    assert circuit.snapshot()["rejected"] == 1


async def test_half_open_lets_exactly_one_concurrent_probe_through() -> None:
    clock = FakeClock()
    circuit = breaker(clock)
    await trip(circuit, 5)
    clock.advance(30.0)
    release = asyncio.Event()
    reached = 0

    async def probe() -> str:
        nonlocal reached
        reached += 1
        await release.wait()
        return "probed"

    tasks = [asyncio.create_task(circuit.call(probe)) for _ in range(5)]
    for _ in range(100):
        if sum(task.done() for task in tasks) == 4:
            break
        await asyncio.sleep(0)
    assert circuit.state is CircuitState.HALF_OPEN
    assert circuit.snapshot()["probe_in_flight"] is True
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert reached == 1
    assert results.count("probed") == 1
    errors = [r for r in results if isinstance(r, ApplicationError)]
    assert len(errors) == 4
    for error in errors:
        assert error.type == CIRCUIT_OPEN_ERROR_TYPE
        assert "half-open" in error.message
        assert error.next_retry_delay == timedelta(seconds=1)
    assert circuit.state is CircuitState.CLOSED


async def test_probe_success_closes_and_resets(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    circuit = breaker(clock)
    caplog.set_level(logging.INFO, logger="keel.breaker")
    await trip(circuit, 5)
    clock.advance(30.0)

    assert await circuit.call(ok) == "ok"

    assert circuit.state is CircuitState.CLOSED
    assert circuit.snapshot()["consecutive_failures"] == 0
    await trip(circuit, 4)  # a full threshold is needed again
    assert circuit.state is CircuitState.CLOSED
    assert transitions(caplog)[1:] == [
        ("test:dep", "open -> half_open", "after 30s cool-down"),
        ("test:dep", "half_open -> closed", "(probe succeeded)"),
    ]


async def test_probe_failure_reopens_with_fresh_cooldown() -> None:
    clock = FakeClock()
    circuit = breaker(clock)
    await trip(circuit, 5)
    clock.advance(45.0)  # well past the cool-down: the new one counts from the probe

    await trip(circuit, 1)

    assert circuit.state is CircuitState.OPEN
    clock.advance(10.0)
    error = await rejected(lambda: circuit.call(ok))
    assert error.next_retry_delay is not None
    assert error.next_retry_delay.total_seconds() == pytest.approx(20.0)
    assert circuit.snapshot()["opens"] == 2


async def test_cancelled_probe_frees_the_slot_without_deciding() -> None:
    clock = FakeClock()
    circuit = breaker(clock)
    await trip(circuit, 5)
    clock.advance(30.0)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(circuit.call(hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert circuit.state is CircuitState.HALF_OPEN
    assert await circuit.call(ok) == "ok"  # the next caller becomes the probe
    assert circuit.state is CircuitState.CLOSED


async def test_outcomes_of_calls_admitted_before_opening_do_not_close_it() -> None:
    clock = FakeClock()
    circuit = breaker(clock)
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "late"

    straggler = asyncio.create_task(circuit.call(slow))
    await asyncio.sleep(0)
    await trip(circuit, 5)
    release.set()

    assert await straggler == "late"
    assert circuit.state is CircuitState.OPEN


# -- classification ---------------------------------------------------------------------------


async def test_request_errors_do_not_open_and_count_as_success() -> None:
    clock = FakeClock()
    registry = llm_breakers(CONFIG, clock=clock)
    circuit = registry.get("http://provider/v1")

    async def rejected_request() -> None:
        raise http_error(400, "bad request")

    async def server_error() -> None:
        raise http_error(503, "overloaded")

    for _ in range(10):
        with pytest.raises(ApplicationError):
            await circuit.call(rejected_request)
    assert circuit.state is CircuitState.CLOSED
    for _ in range(4):
        with pytest.raises(ApplicationError):
            await circuit.call(server_error)
    with pytest.raises(ApplicationError):
        await circuit.call(rejected_request)  # the provider answered: the count resets
    assert circuit.snapshot()["consecutive_failures"] == 0


def test_llm_and_mcp_classification() -> None:
    assert provider_failed(http_error(429, "slow down")) is True
    assert provider_failed(http_error(500, "oops")) is True
    assert provider_failed(transport_error("http://x", OSError("refused"))) is True
    assert provider_failed(http_error(404, "no such model")) is False
    assert provider_failed(RuntimeError("bug")) is True

    protocol = "MCPProtocolError"
    assert mcp_server_failed(ApplicationError("bad params", type=protocol, non_retryable=True)) is (
        False
    )
    assert mcp_server_failed(ApplicationError("timed out", type=protocol)) is True
    assert mcp_server_failed(OSError("All connection attempts failed")) is True
    assert mcp_server_failed(ApplicationError("other", type="X", non_retryable=True)) is True


async def test_registry_isolates_keys() -> None:
    clock = FakeClock()
    registry = BreakerRegistry("llm", "LLM provider", CONFIG, clock=clock)
    for _ in range(5):
        with pytest.raises(Boom):
            await registry.call("http://down/v1", fail)

    assert await registry.call("http://up/v1", ok) == "ok"
    error = await rejected(lambda: registry.call("http://down/v1", ok))
    assert error.message.startswith("circuit for LLM provider http://down/v1 is open")
    snapshot = registry.snapshot()
    assert snapshot["llm:http://down/v1"]["state"] == "open"
    assert snapshot["llm:http://up/v1"]["state"] == "closed"
    assert snapshot["llm:http://down/v1"]["retry_in_seconds"] == 30.0


# -- configuration ----------------------------------------------------------------------------


def test_config_from_env() -> None:
    assert BreakerConfig.from_env({}) == BreakerConfig(5, 30.0)
    assert BreakerConfig.from_env(
        {"KEEL_BREAKER_FAILURES": "3", "KEEL_BREAKER_COOLDOWN_SECONDS": "2.5"}
    ) == BreakerConfig(3, 2.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KEEL_BREAKER_FAILURES", "many"),
        ("KEEL_BREAKER_FAILURES", "2.5"),
        ("KEEL_BREAKER_FAILURES", "0"),
        ("KEEL_BREAKER_COOLDOWN_SECONDS", "soon"),
        ("KEEL_BREAKER_COOLDOWN_SECONDS", "-1"),
        ("KEEL_BREAKER_COOLDOWN_SECONDS", "inf"),
    ],
)
def test_bad_config_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        BreakerConfig.from_env({name: value})
    assert f"{name}={value!r}" in str(info.value)


# -- MCP interceptor --------------------------------------------------------------------------


class FakeNext(ActivityInboundInterceptor):
    """The rest of the interceptor chain: runs ``behaviour`` instead of a real MCP activity."""

    def __init__(self, behaviour: Callable[[], Awaitable[Any]]) -> None:
        self.behaviour = behaviour
        self.calls = 0

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        self.calls += 1
        return await self.behaviour()


def activity_env(activity_type: str) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, activity_type=activity_type, attempt=2)
    return env


async def run_intercepted(
    stamper: ToolResultStamper, env: ActivityEnvironment, nxt: FakeNext
) -> Any:
    interceptor = stamper.intercept_activity(nxt)
    input = ExecuteActivityInput(fn=lambda: None, args=[], executor=None, headers={})
    return await env.run(interceptor.execute_activity, input)


async def test_mcp_interceptor_breaks_per_server_and_keeps_stamps() -> None:
    clock = FakeClock()
    registry = mcp_breakers(CONFIG, clock=clock)
    stamper = ToolResultStamper(registry)
    call_tool = activity_env("temporalio.mcp.knowledge.call-tool")

    async def tool_error() -> dict[str, Any]:
        return {"content": [], "is_error": True}

    for _ in range(10):  # a tool that reports an error is a server that works
        result = await run_intercepted(stamper, call_tool, FakeNext(tool_error))
        assert result["meta"][names.META_ATTEMPT] == 2
        assert names.META_LATENCY_MS in result["meta"]
    down = FakeNext(fail)
    for _ in range(5):
        with pytest.raises(Boom):
            await run_intercepted(
                stamper, activity_env("temporalio.mcp.knowledge.list-tools"), down
            )

    error = await rejected(lambda: run_intercepted(stamper, call_tool, down))
    assert down.calls == 5
    assert "MCP server knowledge is open" in error.message
    other = await run_intercepted(
        stamper, activity_env("temporalio.mcp.support_desk.call-tool"), FakeNext(tool_error)
    )
    assert other["is_error"] is True
    assert await run_intercepted(stamper, activity_env("keel.llm.chat"), FakeNext(ok)) == "ok"
    assert set(registry.snapshot()) == {"mcp:knowledge", "mcp:support_desk"}


async def test_timed_out_cancellation_counts_as_failure_requested_cancel_does_not() -> None:
    registry = mcp_breakers(BreakerConfig(failure_threshold=1, cooldown_seconds=30))
    stamper = ToolResultStamper(registry)

    async def attempt(details: activity.ActivityCancellationDetails) -> None:
        env = activity_env("temporalio.mcp.knowledge.call-tool")
        started = asyncio.Event()

        async def hang() -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.create_task(run_intercepted(stamper, env, FakeNext(hang)))
        await started.wait()
        env.cancel(details)
        with pytest.raises(asyncio.CancelledError):
            await task

    await attempt(activity.ActivityCancellationDetails(cancel_requested=True))
    assert registry.get("knowledge").state is CircuitState.CLOSED
    await attempt(activity.ActivityCancellationDetails(timed_out=True))
    assert registry.get("knowledge").state is CircuitState.OPEN


def test_mcp_server_is_parsed_from_activity_type() -> None:
    assert mcp_server_of("temporalio.mcp.support_desk.call-tool") == "support_desk"
    assert mcp_server_of("temporalio.mcp.a.b.list-tools") == "a.b"
    assert mcp_server_of("temporalio.mcp.call-tool") is None
    assert mcp_server_of("keel.llm.chat") is None


# -- against a real, unreachable HTTP endpoint ------------------------------------------------


async def test_unreachable_provider_opens_circuit_without_further_connection_attempts() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    clock = FakeClock()
    registry = llm_breakers(BreakerConfig(failure_threshold=3, cooldown_seconds=30), clock=clock)
    sent: list[str] = []

    async def count(request: httpx2.Request) -> None:
        sent.append(str(request.url))

    req = ChatRequest(
        model=ModelSettings(name="sim/quick_answer", base_url=base_url),
        messages=[ChatMessage(role="user", content="hello")],
        conversation_id=f"breaker-test-{uuid.uuid4().hex}",
    )
    async with httpx2.AsyncClient(
        transport=httpx2.AsyncHTTPTransport(retries=0), event_hooks={"request": [count]}
    ) as http:
        llm = LLMActivities(OpenAICompatProvider(http), registry)
        for _ in range(3):
            with pytest.raises(ApplicationError) as info:
                await llm.chat(req)
            assert info.value.type == "LLMTransportError"
        assert len(sent) == 3

        error = await rejected(lambda: llm.chat(req))
        assert len(sent) == 3  # the circuit answered; the transport was never asked
        assert error.message == (
            f"circuit for LLM provider {base_url} is open after 3 consecutive failures"
            f" (last: LLMTransportError: LLM provider at {base_url}/chat/completions"
            " unreachable: ConnectError: All connection attempts failed); next probe in 30.0s"
        )
        assert error.next_retry_delay == timedelta(seconds=30)

        clock.advance(30)
        with pytest.raises(ApplicationError) as info:
            await llm.chat(req)  # the half-open probe does reach the network, and fails
        assert info.value.type == "LLMTransportError"
        assert len(sent) == 4
        await rejected(lambda: llm.chat(req))
        assert len(sent) == 4
