"""Prompt caching on the real stack: runs of the prompt_cache profile (Anthropic provider,
simulator's Messages wire) put their cache breakpoints on the tool catalog, the system prompt,
the end of the previous request and the end of this one, never below the minimum; from step
2 on each step reads the previous step's whole prompt from the cache and writes only its last
turn; costs are at genai-prices' cache read and write prices; `keel report` shows the hit rate
and the savings. On the OpenAI wire caching is automatic (prompt_cache_openai).

The simulator's cache is per model and outlives a run (as a provider's does), so a run's first
step may read the catalog and system prompt that an earlier run of the profile wrote.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client

from activities.providers.caching import CHARS_PER_TOKEN, block_chars, min_cache_tokens
from keel.contracts import ModelSettings, Price, RunResult, StepRecord, cache_savings, call_cost
from keel.runtime.pricing import resolve_price
from keel.stack import Stack
from tests.helpers import keel, sim_requests, start

ANTHROPIC = ModelSettings(name="sim/prompt_cache", provider="anthropic",
                          price_as="claude-sonnet-4-5", pricing_provider="anthropic")  # fmt: skip
OPENAI = ModelSettings(name="sim/prompt_cache", price_as="gpt-4o-mini", pricing_provider="openai")


async def cached_run(client: Client, profile: str) -> tuple[RunResult, str]:
    """A run of ``profile`` with a task of its own; its result and workflow id."""
    task = f"ORD-1042 arrived damaged. Can I get my money back? (case {uuid.uuid4().hex[:8]})"
    handle = await start(client, profile, task=task)
    result = await handle.result()
    assert result.status == "completed", result.error
    return result, handle.id


def model_steps(result: RunResult) -> list[StepRecord]:
    steps = [s for s in result.steps if s.kind == "model"]
    assert len(steps) == 3 and all(s.usage is not None for s in steps)
    return steps


def marks(body: dict[str, Any]) -> list[tuple[str, int, int]]:
    """Each breakpoint as (where, message index or -1, estimated prefix tokens as Keel counts)."""
    found: list[tuple[str, int, int]] = []
    chars = 0
    sections = [("tools", -1, body.get("tools") or []), ("system", -1, body.get("system") or [])]
    sections += [("messages", i, m["content"]) for i, m in enumerate(body["messages"])]
    for where, index, blocks in sections:
        for position, block in enumerate(blocks):
            chars += block_chars(block)
            if "cache_control" in block:
                assert block["cache_control"] == {"type": "ephemeral"}
                last = position == len(blocks) - 1
                assert last, f"a mark inside {where} {index}, not on its last block"
                found.append((where, index, chars // CHARS_PER_TOKEN))
    return found


@pytest_asyncio.fixture(scope="module")
async def anthropic_run(client: Client, stack: Stack) -> tuple[RunResult, list[dict[str, Any]]]:
    """One run of prompt_cache, and the three request bodies the simulator received."""
    result, workflow_id = await cached_run(client, "prompt_cache")
    return result, [r["body"] for r in sim_requests(stack, workflow_id)]


async def test_breakpoints_close_the_stable_prefix_and_none_is_below_the_minimum(
    anthropic_run: tuple[RunResult, list[dict[str, Any]]],
) -> None:
    _, bodies = anthropic_run
    minimum = min_cache_tokens(ANTHROPIC)
    assert minimum == 1024  # Sonnet 4.5's, through price_as
    assert len(bodies) == 3
    for number, body in enumerate(bodies, start=1):
        found = marks(body)
        assert 1 <= len(found) <= 4
        assert all(size >= minimum for _, _, size in found), found
        last = len(body["messages"]) - 1
        where = [(w, i) for w, i, _ in found]
        assert ("system", -1) in where and ("messages", last) in where
        tools_size = sum(block_chars(t) for t in body["tools"]) // CHARS_PER_TOKEN
        assert (("tools", -1) in where) == (tools_size >= minimum)
        if number > 1:  # the end of the previous request: the user turn before the last reply
            assert body["messages"][last - 1]["role"] == "assistant"
            assert ("messages", last - 2) in where
    # The previous request's last mark is this one's next-to-last, at the same prefix size.
    assert marks(bodies[0])[-1][2] == marks(bodies[1])[-2][2]
    assert marks(bodies[1])[-1][2] == marks(bodies[2])[-2][2]


async def test_each_step_reads_the_previous_one_and_writes_its_last_turn(
    anthropic_run: tuple[RunResult, list[dict[str, Any]]],
) -> None:
    result, _ = anthropic_run
    first, *later = model_steps(result)
    assert first.usage is not None and first.usage.cache_write_tokens > 0
    previous = first
    for step in later:
        usage, before = step.usage, previous.usage
        assert usage is not None and before is not None
        assert usage.cached_tokens == before.input_tokens  # the whole previous prompt
        assert usage.cache_write_tokens == usage.input_tokens - usage.cached_tokens > 0
        previous = step


async def test_costs_are_at_the_cache_read_and_write_prices(
    anthropic_run: tuple[RunResult, list[dict[str, Any]]],
) -> None:
    result, _ = anthropic_run
    price = resolve_price(ANTHROPIC)
    assert price.cached_price < price.input_per_mtok < price.cache_write_price
    for step in model_steps(result):
        assert step.usage is not None and step.cost_usd is not None
        assert step.cache_saved_usd is not None
        assert step.cost_usd == pytest.approx(call_cost(step.usage, price))
        assert step.cache_saved_usd == pytest.approx(cache_savings(step.usage, price))
        full = Price(input_per_mtok=price.input_per_mtok, output_per_mtok=price.output_per_mtok)
        assert call_cost(step.usage, full) - step.cost_usd == pytest.approx(step.cache_saved_usd)
    assert all((s.cache_saved_usd or 0) > 0 for s in model_steps(result)[1:])
    cached = [s.usage.cached_tokens for s in model_steps(result) if s.usage is not None]
    assert result.usage.cached_tokens == sum(cached)
    assert result.usage.cache_write_tokens > 0


async def test_a_second_run_reads_the_catalog_and_system_prompt_the_first_wrote(
    client: Client, anthropic_run: tuple[RunResult, list[dict[str, Any]]]
) -> None:
    _, bodies = anthropic_run
    shared = next(size for where, _, size in marks(bodies[0]) if where == "system")
    second, _ = await cached_run(client, "prompt_cache")
    first_step = model_steps(second)[0].usage
    assert first_step is not None
    # Read up to the system prompt's mark (its own task is new), as the simulator counts it.
    assert shared <= first_step.cached_tokens < first_step.input_tokens
    assert first_step.cache_write_tokens == first_step.input_tokens - first_step.cached_tokens


async def test_openai_caching_is_automatic_and_billed_at_the_cached_price(client: Client) -> None:
    result, _ = await cached_run(client, "prompt_cache_openai")
    price = resolve_price(OPENAI)
    steps = model_steps(result)
    for step in steps[1:]:
        usage = step.usage
        assert usage is not None
        assert usage.cached_tokens >= 1024 and (usage.cached_tokens - 1024) % 128 == 0
        assert usage.cached_tokens < usage.input_tokens and usage.cache_write_tokens == 0
        assert step.cost_usd is not None
        assert step.cost_usd == pytest.approx(call_cost(usage, price))
        assert step.cost_usd < call_cost(usage.model_copy(update={"cached_tokens": 0}), price)


async def test_the_report_shows_the_hit_rate_and_the_savings(
    stack: Stack, anthropic_run: tuple[RunResult, list[dict[str, Any]]]
) -> None:
    result, _ = anthropic_run
    out = keel(stack, "report", "--since", "2h", "--profile", "prompt_cache", "--json")
    assert out.returncode == 0, out.stderr
    rows = {row["model"]: row for row in json.loads(out.stdout)["cache"]}
    total = rows["*"]
    assert total["cached_tokens"] >= result.usage.cached_tokens > 0
    assert total["hit_rate"] == pytest.approx(total["cached_tokens"] / total["input_tokens"])
    assert 0 < total["hit_rate"] < 1 and total["saved_usd"] > 0
    text = keel(stack, "report", "--since", "2h", "--profile", "prompt_cache")
    assert text.returncode == 0, text.stderr
    assert "Prompt cache" in text.stdout and f"{total['hit_rate'] * 100:.1f}%" in text.stdout
