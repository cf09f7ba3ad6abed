"""An MCP outage: attempts wait out an open circuit, and errors name the server and cause."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.breaker import BreakerConfig, CircuitState, root_cause
from activities.mcp import (
    MCP_UNAVAILABLE_ERROR_TYPE,
    ToolResultStamper,
    circuit_wait_budget,
    mcp_breakers,
)
from tests.unit.activities.test_breaker import (
    Boom,
    FakeClock,
    FakeNext,
    breaker,
    fail,
    rejected,
    run_intercepted,
    trip,
)

GROUP = ExceptionGroup(
    "unhandled errors in a TaskGroup", [ConnectionRefusedError("All connection attempts failed")]
)


def attempt_env(start_to_close: float = 20.0) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        activity_type="temporalio.mcp.support_desk.call-tool",
        started_time=datetime.now(UTC),
        start_to_close_timeout=timedelta(seconds=start_to_close),
        schedule_to_close_timeout=None,
    )
    return env


async def test_a_call_waits_out_the_cool_down_instead_of_failing() -> None:
    clock = FakeClock()
    circuit = breaker(clock, BreakerConfig(failure_threshold=1, cooldown_seconds=30.0))
    await trip(circuit, 1)

    async def pause(seconds: float) -> None:
        clock.advance(seconds)

    permit = await circuit.admit(max_wait=31.0, pause=pause)
    assert permit.probe is True
    assert clock.now == pytest.approx(1030.0)
    circuit.record_success(permit)
    assert circuit.state is CircuitState.CLOSED


async def test_a_wait_longer_than_allowed_fails_as_before() -> None:
    clock = FakeClock()
    circuit = breaker(clock, BreakerConfig(failure_threshold=1, cooldown_seconds=30.0))
    await trip(circuit, 1)
    error = await rejected(lambda: circuit.admit(max_wait=10.0))
    assert error.next_retry_delay == timedelta(seconds=30)
    assert "(last: Boom: connection refused)" in error.message


async def test_interceptor_attempt_outlasts_a_short_outage() -> None:
    registry = mcp_breakers(BreakerConfig(failure_threshold=1, cooldown_seconds=0.3))
    stamper = ToolResultStamper(registry)
    with pytest.raises(Boom):
        await run_intercepted(stamper, attempt_env(), FakeNext(fail))
    assert registry.get("support_desk").state is CircuitState.OPEN

    async def answer() -> dict[str, Any]:
        return {"content": [], "is_error": False}

    up = FakeNext(answer)
    result = await run_intercepted(stamper, attempt_env(), up)
    assert result["is_error"] is False and up.calls == 1
    assert registry.get("support_desk").state is CircuitState.CLOSED


def test_wait_budget_keeps_a_reserve_for_the_call() -> None:
    env = attempt_env(20.0)
    budget = env.run(circuit_wait_budget, env.info.started_time + timedelta(seconds=2))
    assert budget == pytest.approx(13.0)  # 20 s - 2 s spent - 5 s reserve
    assert env.run(circuit_wait_budget, env.info.started_time + timedelta(seconds=30)) == 0.0


async def test_connection_error_names_the_server_and_the_cause() -> None:
    stamper = ToolResultStamper(mcp_breakers(BreakerConfig(failure_threshold=1)))

    async def unreachable() -> None:
        raise GROUP

    with pytest.raises(ApplicationError) as info:
        await run_intercepted(stamper, attempt_env(), FakeNext(unreachable))
    assert info.value.type == MCP_UNAVAILABLE_ERROR_TYPE
    assert info.value.non_retryable is False
    assert info.value.message == (
        "MCP server 'support_desk' unavailable:"
        " ConnectionRefusedError: All connection attempts failed"
    )
    open_error = await rejected(
        lambda: run_intercepted(stamper, attempt_env(0.5), FakeNext(unreachable))
    )
    assert "MCP server support_desk" in open_error.message
    assert "ConnectionRefusedError: All connection attempts failed" in open_error.message


def test_root_cause_unwraps_nested_groups() -> None:
    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [KeyError("k")])])
    assert isinstance(root_cause(nested), KeyError)
    plain = ValueError("v")
    assert root_cause(plain) is plain
