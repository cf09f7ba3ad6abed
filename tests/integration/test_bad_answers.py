"""Answers a provider should never give, on the real stack: the run fails at once with
``model_error`` after one request (the provider's parsing over HTTP:
tests/integration/test_provider_wire.py)."""

from __future__ import annotations

from temporalio.client import Client

from keel.stack import Stack
from tests.helpers import sim_turns, start


async def test_negative_usage_fails_the_run_without_a_retry(client: Client, stack: Stack) -> None:
    handle = await start(client, "bad_usage", task="Hello?")
    result = await handle.result()

    assert (result.status, result.failure_class) == ("failed", "model_error")
    assert result.error and "usage.prompt_tokens=-1000000" in result.error
    assert sim_turns(stack, handle.id)[0]["requests"] == 1
    assert result.usage.input_tokens >= 0 and result.cost_usd >= 0


async def test_a_stream_only_server_fails_the_run_without_a_retry(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "stream_only", task="Hello?")
    result = await handle.result()

    assert (result.status, result.failure_class) == ("failed", "model_error")
    assert result.error and "text/event-stream" in result.error
    assert sim_turns(stack, handle.id)[0]["requests"] == 1
