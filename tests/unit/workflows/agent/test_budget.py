"""Token and cost budgets: projected before each call, never crossed, refused only when needed.

The properties check the guarantee the workflow relies on, with exact (Fraction) arithmetic
next to the float totals the workflow keeps; the simulator's prompt count is recomputed here
independently (ceil(chars / 4) of texts, history arguments and the OpenAI tools JSON).
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.contracts import ChatMessage, Limits, Price, ToolCall, ToolSpec, Usage, call_cost
from workflows.agent.budget import (
    COST_EPSILON_USD,
    MIN_OUTPUT_TOKENS,
    BudgetRefusal,
    CallAllowed,
    add_cost,
    add_usage,
    estimate_prompt_tokens,
    plan_call,
    tokens_used,
    worst_case_cost,
)

PRICE = Price(input_per_mtok=1.0, output_per_mtok=2.0, cached_input_per_mtok=0.5)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------------
# Cost and token accounting
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "price", "dollars"),
    [
        # 600 uncached x $1 + 400 cached x $0.50 + 200 output x $2, per million.
        (Usage(input_tokens=1000, cached_tokens=400, output_tokens=200), PRICE, 1200e-6),
        # No cached price listed: cached tokens cost the input price.
        (
            Usage(input_tokens=1000, cached_tokens=1000),
            Price(input_per_mtok=3, output_per_mtok=15),
            3000e-6,
        ),
        # More cached than input reported: all input counts as cached, never negative.
        (Usage(input_tokens=10, cached_tokens=50), PRICE, 5e-6),
    ],
)
def test_call_cost(usage: Usage, price: Price, dollars: float) -> None:
    assert call_cost(usage, price) == pytest.approx(dollars)


def test_tokens_used_counts_cached_tokens_once() -> None:
    assert tokens_used(Usage(input_tokens=100, cached_tokens=60, output_tokens=7)) == 107


# --------------------------------------------------------------------------------------------
# plan_call: exact values
# --------------------------------------------------------------------------------------------


def test_unlimited_run_gets_the_model_cap() -> None:
    decision = plan_call(Limits(), 10_000, 5.0, 1_000, 512, PRICE)
    assert decision == CallAllowed(512, 1_512, worst_case_cost(1_000, 512, PRICE))
    assert decision.projected_cost_usd == pytest.approx((1_000 * 1.0 + 512 * 2.0) / 1e6)


def test_budget_leaving_exactly_prompt_plus_min_output_allows_min_output() -> None:
    limits = Limits(max_tokens=5_000)
    used, prompt = 5_000 - 1_000 - MIN_OUTPUT_TOKENS, 1_000
    decision = plan_call(limits, used, 0.0, prompt, 1024, PRICE)
    assert isinstance(decision, CallAllowed)
    assert decision.max_output_tokens == MIN_OUTPUT_TOKENS
    assert decision.projected_tokens == 1_000 + MIN_OUTPUT_TOKENS


def test_one_token_less_is_refused_with_a_readable_message() -> None:
    limits = Limits(max_tokens=5_000)
    used = 5_000 - 1_000 - MIN_OUTPUT_TOKENS + 1
    decision = plan_call(limits, used, 0.0, 1_000, 1024, PRICE)
    assert decision == BudgetRefusal(
        "token_budget",
        "next call needs up to 1,016 tokens (prompt ~1,000 + output ≥ 16)"
        " but only 1,015 of max_tokens=5,000 remain",
    )


def test_token_budget_lowers_the_cap() -> None:
    decision = plan_call(Limits(max_tokens=2_000), 500, 0.0, 1_000, 1024, PRICE)
    assert isinstance(decision, CallAllowed)
    assert decision.max_output_tokens == 500


def test_exhausted_budget_reports_zero_remaining() -> None:
    decision = plan_call(Limits(max_tokens=100), 150, 0.0, 10, 1024, PRICE)
    assert isinstance(decision, BudgetRefusal)
    assert "only 0 of max_tokens=100 remain" in decision.message


def test_cost_budget_lowers_the_cap_keeping_a_billionth_of_a_dollar_spare() -> None:
    dollar_per_output_token = Price(input_per_mtok=0.0, output_per_mtok=1e6)
    # 100 tokens would cost exactly the $100 budget: the epsilon of slack leaves 99.
    exact = plan_call(Limits(max_cost_usd=100.0), 0, 0.0, 500, 1024, dollar_per_output_token)
    assert isinstance(exact, CallAllowed)
    assert exact.max_output_tokens == 99
    roomy = plan_call(Limits(max_cost_usd=100.5), 0, 0.0, 500, 1024, dollar_per_output_token)
    assert isinstance(roomy, CallAllowed)
    assert roomy.max_output_tokens == 100
    assert roomy.projected_cost_usd == pytest.approx(100.0)


def test_cost_refusal_names_the_cost_budget() -> None:
    price = Price(input_per_mtok=10.0, output_per_mtok=30.0)
    decision = plan_call(Limits(max_cost_usd=0.01), 0, 0.009, 200, 1024, price)
    assert isinstance(decision, BudgetRefusal)
    assert decision.reason == "cost_budget"
    assert decision.message == (
        "next call may cost up to $0.00248 (prompt ~200 tokens + output ≥ 16 tokens at"
        " $10.00 / $30.00 per million) but only $0.001 of max_cost_usd=0.01 remain"
    )


def test_cost_budget_fitting_the_prompt_but_not_min_output_is_refused() -> None:
    dollar_per_output_token = Price(input_per_mtok=0.0, output_per_mtok=1e6)
    decision = plan_call(Limits(max_cost_usd=15.5), 0, 0.0, 500, 1024, dollar_per_output_token)
    assert isinstance(decision, BudgetRefusal)
    assert decision.reason == "cost_budget"
    assert "only $15.50 of max_cost_usd=15.5 remain" in decision.message


def test_token_budget_is_named_when_both_are_short() -> None:
    limits = Limits(max_tokens=100, max_cost_usd=0.000001)
    decision = plan_call(limits, 100, 1.0, 50, 1024, PRICE)
    assert isinstance(decision, BudgetRefusal)
    assert decision.reason == "token_budget"


def test_model_cap_below_min_output_is_the_floor() -> None:
    decision = plan_call(Limits(max_tokens=1_008), 0, 0.0, 1_000, 8, PRICE)
    assert decision == CallAllowed(8, 1_008, worst_case_cost(1_000, 8, PRICE))
    assert isinstance(plan_call(Limits(max_tokens=1_007), 0, 0.0, 1_000, 8, PRICE), BudgetRefusal)


def test_free_output_is_capped_by_tokens_only() -> None:
    price = Price(input_per_mtok=1.0, output_per_mtok=0.0)
    decision = plan_call(Limits(max_cost_usd=1.0), 0, 0.0, 1_000, 4096, price)
    assert isinstance(decision, CallAllowed)
    assert decision.max_output_tokens == 4096


def test_worst_case_uses_the_dearer_of_input_and_cached_price() -> None:
    odd = Price(input_per_mtok=1.0, output_per_mtok=0.0, cached_input_per_mtok=4.0)
    assert worst_case_cost(1_000_000, 0, odd) == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("input_price", "output_price", "prompt", "used", "max_cost"),
    [
        # Float division lands one token short of what fits: the cap is walked up.
        (9.385958677423488, 43.27727402343743, 182408, 0.0, 6.7649120800379),
        # Float division lands one token past what fits: the cap is walked down.
        (1.335, 52.63821730500145, 56985, 41.913180490347465, 50.86516430653411),
    ],
)
def test_cost_cap_is_the_largest_that_fits_despite_float_division(
    input_price: float, output_price: float, prompt: int, used: float, max_cost: float
) -> None:
    price = Price(input_per_mtok=input_price, output_per_mtok=output_price)
    decision = plan_call(Limits(max_cost_usd=max_cost), 0, used, prompt, 200_000, price)
    assert isinstance(decision, CallAllowed)
    cap, room = decision.max_output_tokens, max_cost - used - COST_EPSILON_USD
    assert worst_case_cost(prompt, cap, price) <= room < worst_case_cost(prompt, cap + 1, price)


# --------------------------------------------------------------------------------------------
# plan_call: properties
# --------------------------------------------------------------------------------------------

money = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
prices = st.builds(
    Price, input_per_mtok=money, output_per_mtok=money, cached_input_per_mtok=st.none() | money
)


class Situation(NamedTuple):
    limits: Limits
    used_tokens: int
    used_cost: float
    prompt: int
    model_max: int
    price: Price


@st.composite
def situations(draw: st.DrawFn) -> Situation:
    """A run before a model call: random budgets, or budgets at the edge of ``fits`` outputs."""
    used_tokens = draw(st.integers(min_value=0, max_value=2_000_000))
    used_cost = draw(st.floats(min_value=0.0, max_value=10_000.0, allow_nan=False))
    prompt = draw(st.integers(min_value=0, max_value=300_000))
    model_max = draw(st.integers(min_value=1, max_value=200_000))
    price = draw(prices)
    if draw(st.booleans()):
        max_tokens = draw(st.none() | st.integers(min_value=1, max_value=2_000_000))
        max_cost = draw(st.none() | st.floats(min_value=1e-6, max_value=10_000.0))
    else:
        fits = draw(st.integers(0, 2 * MIN_OUTPUT_TOKENS) | st.integers(0, 200_000))
        max_tokens = max(1, used_tokens + prompt + fits + draw(st.integers(-2, 2)))
        jitter = draw(st.sampled_from([-2e-9, -1e-9, -1e-12, 0.0, 1e-12, 1e-9, 2e-9, 1e-6]))
        max_cost = used_cost + worst_case_cost(prompt, fits, price) + jitter
        budgets = draw(st.sampled_from(["tokens", "cost", "both"]))
        max_tokens = max_tokens if budgets != "cost" else None
        max_cost = max_cost if budgets != "tokens" and max_cost > 0 else None
    limits = Limits(max_tokens=max_tokens, max_cost_usd=max_cost)
    return Situation(limits, used_tokens, used_cost, prompt, model_max, price)


def _exact_cost(usage: Usage, price: Price) -> Fraction:
    cached = (
        price.input_per_mtok if price.cached_input_per_mtok is None else price.cached_input_per_mtok
    )
    return (
        (usage.input_tokens - usage.cached_tokens) * Fraction(price.input_per_mtok)
        + usage.cached_tokens * Fraction(cached)
        + usage.output_tokens * Fraction(price.output_per_mtok)
    ) / 1_000_000


@FAST
@given(situation=situations(), data=st.data())
def test_plan_never_lets_a_call_cross_a_budget(situation: Situation, data: st.DataObject) -> None:
    limits, used_tokens, used_cost, prompt, model_max, price = situation
    decision = plan_call(*situation)
    floor = min(MIN_OUTPUT_TOKENS, model_max)
    if isinstance(decision, BudgetRefusal):
        _assert_refusal_was_needed(decision, situation, floor)
        return
    cap = decision.max_output_tokens
    assert floor <= cap <= model_max
    assert decision.projected_tokens == prompt + cap
    # Any real usage within the estimate and the cap, cached or not, keeps both totals in.
    input_tokens = data.draw(st.just(prompt) | st.integers(min_value=0, max_value=prompt))
    output_tokens = data.draw(st.just(cap) | st.integers(min_value=0, max_value=cap))
    cached = data.draw(st.integers(min_value=0, max_value=input_tokens))
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cached_tokens=cached)
    if limits.max_tokens is not None:
        assert used_tokens + prompt + cap <= limits.max_tokens
        assert used_tokens + tokens_used(usage) <= limits.max_tokens
    if limits.max_cost_usd is not None:
        assert used_cost + call_cost(usage, price) <= limits.max_cost_usd
        assert Fraction(used_cost) + _exact_cost(usage, price) <= Fraction(limits.max_cost_usd)
        assert used_cost + decision.projected_cost_usd <= limits.max_cost_usd
    # The cap is lowered only as far as a budget needs.
    if cap < model_max:
        one_more_tokens = limits.max_tokens is not None and (
            used_tokens + prompt + cap + 1 > limits.max_tokens
        )
        one_more_cost = limits.max_cost_usd is not None and (
            worst_case_cost(prompt, cap + 1, price)
            > limits.max_cost_usd - used_cost - COST_EPSILON_USD
        )
        assert one_more_tokens or one_more_cost


def _assert_refusal_was_needed(decision: BudgetRefusal, situation: Situation, floor: int) -> None:
    """Refused only when not even the minimum output fits (exactly, up to float rounding)."""
    limits, used_tokens, used_cost, prompt, _, price = situation
    tokens_short = (
        limits.max_tokens is not None and used_tokens + prompt + floor > limits.max_tokens
    )
    assert tokens_short == (decision.reason == "token_budget")
    if tokens_short:
        return
    assert limits.max_cost_usd is not None
    dearer = max(price.input_per_mtok, price.cached_input_per_mtok or 0.0)
    worst = (prompt * Fraction(dearer) + floor * Fraction(price.output_per_mtok)) / 1_000_000
    room = Fraction(limits.max_cost_usd) - Fraction(used_cost) - Fraction(COST_EPSILON_USD)
    assert worst > room - Fraction(1, 10**12) * (1 + Fraction(limits.max_cost_usd))


# --------------------------------------------------------------------------------------------
# Prompt estimate
# --------------------------------------------------------------------------------------------


def _simulator_prompt_tokens(messages: list[ChatMessage], tools: list[ToolSpec]) -> int:
    """The simulator's count, recomputed from the OpenAI request body Keel sends."""
    chars = sum(
        len(m.content or "") + sum(len(c.arguments) for c in m.tool_calls) for m in messages
    )
    if tools:
        body = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                },
            }
            for t in tools
        ]
        chars += len(json.dumps(body, separators=(",", ":")))
    return max(1, math.ceil(chars / 4))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
tool_calls = st.builds(ToolCall, id=st.text(max_size=12), name=st.text(), arguments=st.text())
chat_messages = st.builds(
    ChatMessage,
    role=st.sampled_from(["system", "user", "assistant", "tool"]),
    content=st.none() | st.text(max_size=400),
    tool_calls=st.lists(tool_calls, max_size=3),
)
tool_specs = st.builds(
    ToolSpec,
    server=st.just("desk"),
    name=st.text(min_size=1, max_size=40),
    description=st.text(max_size=300),
    input_schema=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
)


@FAST
@given(messages=st.lists(chat_messages, max_size=8), tools=st.lists(tool_specs, max_size=5))
def test_estimate_is_never_below_the_simulators_count(
    messages: list[ChatMessage], tools: list[ToolSpec]
) -> None:
    assert estimate_prompt_tokens(messages, tools) >= _simulator_prompt_tokens(messages, tools)


@FAST
@given(messages=st.lists(chat_messages, max_size=6), extra=chat_messages)
def test_estimate_grows_with_the_history(messages: list[ChatMessage], extra: ChatMessage) -> None:
    assert estimate_prompt_tokens([*messages, extra], []) > estimate_prompt_tokens(messages, [])


def test_estimate_of_typical_english_is_above_four_chars_per_token() -> None:
    text = "Please look up order ORD-1042 and refund the damaged item to the customer. " * 20
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"order_id": {"type": "string", "description": "e.g. ORD-1042"}},
        "required": ["order_id"],
    }
    messages = [
        ChatMessage(role="system", content="You are a careful support agent."),
        ChatMessage(role="user", content=text),
        ChatMessage(
            role="assistant",
            tool_calls=[ToolCall(id="c1", name="get_order", arguments='{"order_id":"ORD-1042"}')],
        ),
        ChatMessage(role="tool", tool_call_id="c1", content='{"status":"delivered"}'),
    ]
    tools = [
        ToolSpec(
            server="desk", name="get_order", description="Fetch one order.", input_schema=schema
        )
    ]
    estimate = estimate_prompt_tokens(messages, tools)
    simulated = _simulator_prompt_tokens(messages, tools)
    assert simulated < estimate <= 2 * simulated


def test_many_small_tools_stay_above_the_simulators_count() -> None:
    tools = [ToolSpec(server="desk", name=str(i), input_schema={}) for i in range(20)]
    assert estimate_prompt_tokens([], tools) >= _simulator_prompt_tokens([], tools)


def test_estimate_of_an_empty_prompt_is_positive() -> None:
    assert estimate_prompt_tokens([], []) >= 1


def test_non_ascii_text_costs_more_than_ascii_of_the_same_length() -> None:
    ascii_only = [ChatMessage(role="user", content="a" * 300)]
    cjk = [ChatMessage(role="user", content="漢" * 300)]
    assert estimate_prompt_tokens(cjk, []) >= 300 > estimate_prompt_tokens(ascii_only, [])


def test_lone_surrogates_do_not_crash_the_estimate() -> None:
    assert estimate_prompt_tokens([ChatMessage(role="user", content="\ud800x")], []) > 0


# -- run totals: a provider's figures never lower them ------------------------------------------


@given(
    st.lists(
        st.tuples(
            st.integers(-(10**9), 10**9), st.integers(-(10**9), 10**9), st.integers(-(10**9), 10**9)
        ),
        max_size=8,
    )
)
def test_run_usage_never_decreases(calls: list[tuple[int, int, int]]) -> None:
    total = Usage()
    for input_tokens, output_tokens, cached_tokens in calls:
        usage = Usage(
            input_tokens=input_tokens, output_tokens=output_tokens, cached_tokens=cached_tokens
        )
        after = add_usage(total, usage)
        assert after.input_tokens >= total.input_tokens
        assert after.output_tokens >= total.output_tokens
        assert after.cached_tokens >= total.cached_tokens
        assert after.input_tokens - total.input_tokens == max(input_tokens, 0)
        total = after


def test_negative_or_nan_cost_is_not_a_refund() -> None:
    assert add_cost(1.5, -1.0) == 1.5
    assert add_cost(1.5, math.nan) == 1.5
    assert add_cost(1.5, 0.25) == 1.75
