"""Model tiers and routing on the real stack (``[routing]``, workflows/agent/routing.py).

Each test profile (tests/profiles/route_*.toml) has a ``fast`` and a ``strong`` tier, each a
scenario of its own (simulator/scenarios/route_*_{fast,strong}.toml). The simulator plays the
turn a request's assistant messages count, so each scenario scripts, turn by turn, the steps
its tier should serve, and a turn its tier must never serve says so in its text: a run that
routed a step to the wrong tier gets that text as its answer. Costs are checked against each
tier's price: a step is billed at the price of the tier that served it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client

from keel.contracts import LimitOverrides, ProgressEvent, RunResult, StepRecord, call_cost
from keel.contracts.model_settings import Price
from keel.report.collect import visibility_query
from keel.stack import Stack
from keel.watch import stream_events
from tests.helpers import keel, start

FAST = Price(input_per_mtok=0.15, output_per_mtok=0.60)
STRONG = Price(input_per_mtok=2.50, output_per_mtok=10.00)
TASK = "Hi, I'm Maria Lopez (CUS-1001). When was ORD-1042 delivered, and what did I pay?"
ANSWER = "ORD-1042 was delivered on 2026-11-06; you paid 42.00 USD."


async def routed_run(client: Client, profile: str, task: str = TASK) -> tuple[str, RunResult]:
    handle = await start(client, profile, task)
    return handle.id, await handle.result()


def model_steps(result: RunResult) -> list[StepRecord]:
    return [s for s in result.steps if s.kind == "model"]


def routes(result: RunResult) -> list[tuple[int, str | None, str | None]]:
    """(step, tier, route) of every model step."""
    return [(s.step, s.tier, s.route) for s in model_steps(result)]


def price_of(record: StepRecord, price: Price) -> float:
    assert record.usage is not None
    return call_cost(record.usage, price)


async def progress(client: Client, workflow_id: str) -> list[ProgressEvent]:
    events: list[ProgressEvent] = []
    await stream_events(client, workflow_id, events.append)
    return events


def worker_events(stack: Stack, name: str, workflow_id: str) -> list[dict[str, Any]]:
    return [
        line
        for text in stack.log_path("worker").read_text().splitlines()
        if text.startswith("{")
        and (line := json.loads(text)).get("event") == name
        and line.get("workflow_id") == workflow_id
    ]


async def test_the_first_step_and_the_tool_steps_are_served_by_their_tiers(
    client: Client, stack: Stack
) -> None:
    workflow_id, result = await routed_run(client, "route_plan")

    assert result.status == "completed", result.error
    assert result.final_answer == ANSWER
    assert routes(result) == [(1, "strong", "first step"), (2, "fast", "tool step")]
    first, second = model_steps(result)
    assert (first.name, second.name) == ("sim/route_plan_strong", "sim/route_plan_fast")
    # each step is billed at its own tier's price, and the run's cost is their sum
    assert first.cost_usd == price_of(first, STRONG) and first.cost_usd > 0
    assert second.cost_usd == price_of(second, FAST) and second.cost_usd > 0
    assert result.cost_usd == first.cost_usd + second.cost_usd
    # live progress names the tier and why
    started = [e for e in await progress(client, workflow_id) if e.kind == "model.started"]
    assert [(e.step, e.data["tier"], e.data["route"]) for e in started] == routes(result)
    assert started[0].message == "step 1: thinking on strong…"
    # the activity's model.call event too
    calls = worker_events(stack, "model.call", workflow_id)
    assert sorted((c["step"], c["tier"], c["route"]) for c in calls) == routes(result)


async def test_a_validation_refusal_escalates_and_a_clean_step_steps_back_down(
    client: Client,
) -> None:
    workflow_id, result = await routed_run(client, "route_refusal")

    assert result.status == "completed", result.error
    assert result.final_answer == ANSWER
    assert routes(result) == [
        (1, "fast", "first step"),
        (2, "strong", "escalated after a validation refusal at step 1"),
        (3, "fast", "de-escalated from strong after 1 clean step at step 2"),
    ]
    [refused] = [s for s in result.steps if s.kind == "tool" and s.step == 1]
    assert refused.outcome == "invalid" and (refused.validation or "").startswith("schema:")
    assert [s.name for s in model_steps(result)] == [
        "sim/route_refusal_fast",
        "sim/route_refusal_strong",
        "sim/route_refusal_fast",
    ]
    shifts = [e for e in await progress(client, workflow_id) if e.kind.startswith("routing.")]
    assert [(e.kind, e.step, e.data["from_tier"], e.data["to_tier"]) for e in shifts] == [
        ("routing.escalated", 1, "fast", "strong"),
        ("routing.deescalated", 2, "strong", "fast"),
    ]
    assert shifts[0].message == "step 1: escalating from fast to strong after a validation refusal"


async def test_a_tool_error_escalates_across_continue_as_new_until_two_clean_steps(
    client: Client,
) -> None:
    """``deescalate_after = 2``, and the run continues as new after every tool turn: the
    escalation and its count of clean steps travel in the carried run."""
    _, result = await routed_run(client, "route_error")

    assert result.status == "completed", result.error
    assert result.continued == 3  # after each tool turn: steps 1, 2 and 3 each ran apart
    assert result.final_answer == f"Maria's {ANSWER}"
    why = "escalated after a tool error at step 1"
    assert routes(result) == [
        (1, "fast", "first step"),
        (2, "strong", why),
        (3, "strong", why),
        (4, "fast", "de-escalated from strong after 2 clean steps at step 3"),
    ]
    [error] = [s for s in result.steps if s.kind == "tool" and s.step == 1]
    assert error.outcome == "tool_error"
    strong = [s for s in model_steps(result) if s.tier == "strong"]
    assert all(s.cost_usd == price_of(s, STRONG) for s in strong)


async def test_a_low_confidence_step_escalates(client: Client) -> None:
    _, result = await routed_run(client, "route_unsure")

    assert result.status == "completed", result.error
    assert routes(result) == [
        (1, "fast", "first step"),
        (2, "strong", "escalated after a low confidence (0.30) at step 1"),
    ]
    assert (result.final_answer or "").startswith(ANSWER)


async def test_a_low_confidence_answer_is_asked_again_one_rung_up(client: Client) -> None:
    workflow_id, result = await routed_run(client, "route_guess", "How long do refunds take?")

    assert result.status == "completed", result.error
    assert result.final_answer == (
        "Refunds reach the original payment method within 5-7 business days.\nconfidence: 0.95"
    )
    guess, answer = model_steps(result)
    assert (guess.tier, guess.route, guess.purpose) == ("fast", "first step", None)
    assert guess.detail == "answer; asked again on strong (escalated answer)"
    assert (answer.tier, answer.purpose) == ("strong", "escalated answer")
    assert answer.route == "escalated after a low confidence (0.20) at step 1"
    assert result.model_calls == 2 and result.tool_calls == 0
    # the guess was paid for (at the fast tier's price) though its answer was not kept
    assert guess.cost_usd == price_of(guess, FAST)
    assert result.cost_usd == (guess.cost_usd or 0) + (answer.cost_usd or 0)
    kinds = [e.kind for e in await progress(client, workflow_id)]
    assert kinds.count("routing.escalated") == 1


async def test_the_final_tier_writes_the_answer(client: Client) -> None:
    workflow_id, result = await routed_run(client, "route_final")

    assert result.status == "completed", result.error
    assert result.final_answer == (
        "Hi Maria, your order ORD-1042 was delivered on 2026-11-06 and you paid 42.00 USD."
    )
    assert routes(result) == [
        (1, "fast", "first step"),
        (2, "fast", "tool step"),
        (3, "strong", "final answer after fast answered at step 2"),
    ]
    steps = model_steps(result)
    assert steps[1].detail == "answer; asked again on strong (final answer)"
    assert steps[2].purpose == "final answer" and steps[2].name == "sim/route_final_strong"
    assert steps[2].cost_usd == price_of(steps[2], STRONG)
    [final] = [e for e in await progress(client, workflow_id) if e.kind == "routing.final_answer"]
    assert final.step == 2 and final.message == (
        "step 2: fast answered; asking strong for the final answer"
    )


async def test_without_a_step_left_the_draft_is_the_answer(client: Client) -> None:
    handle = await start(client, "route_final", TASK, limits=LimitOverrides(max_steps=2))
    result = await handle.result()

    assert result.status == "completed", result.error
    assert result.final_answer == "draft: order delivered, 42 paid."
    assert [s.tier for s in model_steps(result)] == ["fast", "fast"]
    assert model_steps(result)[1].detail == "answer; kept: asking strong again: no step left"


async def test_a_budget_the_strong_tier_does_not_fit_keeps_the_run_on_the_fast_tier(
    client: Client,
) -> None:
    """A tool error would escalate to strong, and the answer would be asked again on strong
    (``final``): at strong's price neither call fits ``max_cost_usd``, so the fast tier serves
    and its answer is the run's — the run completes instead of halting on the budget."""
    _, result = await routed_run(client, "route_budget")

    assert result.status == "completed", result.error
    assert result.final_answer == "ORD-9999 does not exist; please check the order number."
    assert routes(result) == [
        (1, "fast", "first step"),
        (2, "fast", "tool step (escalation to strong skipped: over the cost budget)"),
    ]
    assert model_steps(result)[1].detail == (
        "answer; kept: asking strong again: over the cost budget"
    )
    assert all(s.name == "sim/route_budget_fast" for s in model_steps(result))
    assert 0 < result.cost_usd < 0.05


async def test_keel_result_and_keel_report_say_which_tier_served_each_step(
    client: Client, stack: Stack
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    workflow_id, result = await routed_run(client, "route_refusal")
    assert result.status == "completed", result.error

    shown = keel(stack, "result", workflow_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    [tiers] = [line for line in lines if line.startswith("tiers: ")]
    assert tiers.startswith("tiers: fast 2 steps $") and " · strong 1 step $" in tiers
    assert "        tier strong: escalated after a validation refusal at step 1" in lines

    extra = f"WorkflowId = '{workflow_id}'"
    query = visibility_query(since, datetime.now(UTC) + timedelta(minutes=5), extra)
    for _ in range(200):  # visibility is eventually consistent
        if (await client.count_workflows(query)).count == 1:
            break
        await asyncio.sleep(0.1)
    out = keel(stack, "report", "--since", "1h", "--query", extra, "--json")
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    assert figures["runs"] == 1
    by_tier = {row["tier"]: row for row in figures["tiers"]}
    assert (by_tier["fast"]["steps"], by_tier["strong"]["steps"]) == (2, 1)
    assert by_tier["fast"]["reasons"] == {"first step": 1, "de-escalated": 1}
    assert by_tier["strong"]["reasons"] == {"escalated": 1}
    strong = [s for s in model_steps(result) if s.tier == "strong"]
    assert by_tier["strong"]["cost_usd"] == strong[0].cost_usd
    text = keel(stack, "report", "--since", "1h", "--query", extra)
    assert "Model steps per tier (routing)" in text.stdout
