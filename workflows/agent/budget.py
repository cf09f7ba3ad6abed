"""Token and cost budgets, checked before every model call so a cap is never crossed.

Pure and deterministic (stdlib and ``keel.contracts`` only: no I/O, no clocks), so the workflow
can call it and replay it. The workflow asks ``plan_call`` before each model call with what the
run has used so far, a conservative estimate of the prompt, and the model's price; the answer
is either the output-token cap to send with the call or a refusal naming the budget.

Why projected, not observed: a budget checked only after a call is crossed by that call. Here
the worst case of the next call (its whole estimated prompt plus every output token it may
produce, with no cache discount) must fit in what is left, and the call's ``max_tokens`` is
lowered to make it fit. If the provider's real usage is within the estimate for the prompt and
within the cap for the output, the totals after the call stay within both budgets.

Money is plain ``float`` USD. Sums of floats drift by a few ulps, so a call is allowed only
when its worst-case cost fits with ``COST_EPSILON_USD`` (a billionth of a dollar) to spare;
for any budget below ~$1M that margin exceeds the rounding error of summing a run's costs, so
the float total the workflow keeps never reads above ``max_cost_usd``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal, TypeAlias

from keel.contracts import ChatMessage, ConversationState, Limits, Price, ToolSpec, Usage
from keel.contracts.llm import PER_TOKEN

MIN_OUTPUT_TOKENS = 16
"""A call that cannot produce at least this many output tokens is not worth making."""

COST_EPSILON_USD = 1e-9
"""Slack kept below ``max_cost_usd`` so float rounding cannot tip a total over it."""

# Prompt estimator. Providers do not tokenize before the call, so Keel over-estimates:
# OpenAI-like tokenizers average ~4 characters per token for English, and the simulator
# reports ceil(chars / 4); counting one token per 3 UTF-8 *bytes* adds a third for English and
# grows with non-ASCII text (accented and CJK characters are 2-3 bytes and often whole tokens).
# The per-item overheads cover the chat framing providers add (role markers, separators, the
# function wrapper around each tool). An upper estimate, not an exact count: it can be beaten
# by text that tokenizes worse than 3 bytes per token (long runs of digits or symbols).
BYTES_PER_TOKEN = 3
TOKENS_PER_REQUEST = 3
TOKENS_PER_MESSAGE = 4
TOKENS_PER_TOOL_CALL = 4
TOKENS_PER_TOOL = 10
# An image from a tool result, for models that accept images: OpenAI bills a high-detail
# image at 85 tokens plus 170 per 512-px tile of the scaled image, about 1,500 at most; other
# providers are similar. Counted for every model (those without images see a short marker).
TOKENS_PER_IMAGE = 1_600


BudgetName: TypeAlias = Literal["token_budget", "cost_budget"]


@dataclass(frozen=True)
class CallAllowed:
    """The next model call may go ahead with at most ``max_output_tokens`` of output."""

    max_output_tokens: int
    projected_tokens: int
    """Worst case of the call: prompt estimate + output cap."""
    projected_cost_usd: float
    """Worst case of the call in USD, at full (uncached) input price."""


@dataclass(frozen=True)
class BudgetRefusal:
    """The next model call would not fit in a budget; ``reason`` is the failure class."""

    reason: BudgetName
    message: str


PlanResult: TypeAlias = CallAllowed | BudgetRefusal


def estimate_prompt_tokens(
    messages: list[ChatMessage] | ConversationState, tools: list[ToolSpec]
) -> int:
    """A conservative (upper) estimate of the prompt tokens a call with this history bills.

    Counts what the provider sees: message contents and names, the name and JSON arguments of
    every tool call in the history, each offered tool's name, description and input schema as
    JSON, and the images of tool results; see the constants above for the ratio and overheads.
    A conversation with a context budget is counted as its view shows it (what the model
    activity sends: stubs for trimmed tool results, one message for a summary).
    """
    if isinstance(messages, ConversationState):
        count, size, calls, images = (messages.messages, messages.text_bytes,
                                      messages.tool_calls, messages.images)  # fmt: skip
        if messages.context is not None:  # the context budget's view (trimmed, summarized)
            gone = messages.context.removed()
            count, size, calls, images = (count - gone[0], size - gone[1], calls - gone[2],
                                          images - gone[3])  # fmt: skip
    else:
        count, size, calls, images = len(messages), 0, 0, 0
        for message in messages:
            images += len(message.images)
            size += _bytes(message.content or "") + _bytes(message.name or "")
            for call in message.tool_calls:
                size += _bytes(call.name) + _bytes(call.arguments)
                calls += 1
    if tools:
        size += _bytes(_tools_json(tools))
    overhead = (
        TOKENS_PER_REQUEST
        + TOKENS_PER_MESSAGE * count
        + TOKENS_PER_TOOL_CALL * calls
        + TOKENS_PER_TOOL * len(tools)
        + TOKENS_PER_IMAGE * images
    )
    return -(-size // BYTES_PER_TOKEN) + overhead


def add_usage(total: Usage, usage: Usage) -> Usage:
    """The run's usage after a call: every figure grows by the call's and never shrinks, so a
    provider reporting negative usage cannot give a budget back (the provider refuses such
    answers too: activities/providers/openai_compat.py)."""
    return Usage(
        input_tokens=total.input_tokens + max(usage.input_tokens, 0),
        output_tokens=total.output_tokens + max(usage.output_tokens, 0),
        cached_tokens=total.cached_tokens + max(usage.cached_tokens, 0),
        cache_write_tokens=total.cache_write_tokens + max(usage.cache_write_tokens, 0),
    )


def add_cost(total: float, cost: float) -> float:
    """The run's spend after a call: a negative or NaN cost is not a refund."""
    return total + cost if cost > 0 else total


def tokens_used(usage: Usage) -> int:
    """Tokens a call counts against ``max_tokens``: input (cached included, once) + output."""
    return usage.input_tokens + usage.output_tokens


def plan_call(
    limits: Limits,
    used_tokens: int,
    used_cost_usd: float,
    prompt_estimate: int,
    max_output_tokens: int,
    price: Price,
) -> PlanResult:
    """Decide, before a model call, whether it fits the run's budgets and with what output cap.

    ``used_tokens`` / ``used_cost_usd`` are the run's totals so far; ``prompt_estimate`` comes
    from ``estimate_prompt_tokens``; ``max_output_tokens`` is the model's own cap. The answer's
    cap is the model's cap, lowered until the call's worst case fits every budget. It is
    refused when not even ``MIN_OUTPUT_TOKENS`` (or the model's cap, if smaller) fit; when both
    budgets are short, the token budget is named.
    """
    floor = min(MIN_OUTPUT_TOKENS, max_output_tokens)
    cap = max_output_tokens
    if limits.max_tokens is not None:
        room = limits.max_tokens - used_tokens - prompt_estimate
        if room < floor:
            return BudgetRefusal(
                "token_budget",
                _token_message(limits.max_tokens, used_tokens, prompt_estimate, floor),
            )
        cap = min(cap, room)
    if limits.max_cost_usd is not None:
        affordable = _affordable_output(
            limits.max_cost_usd - used_cost_usd, prompt_estimate, cap, price
        )
        if affordable < floor:
            return BudgetRefusal(
                "cost_budget",
                _cost_message(limits.max_cost_usd, used_cost_usd, prompt_estimate, floor, price),
            )
        cap = affordable
    return CallAllowed(cap, prompt_estimate + cap, worst_case_cost(prompt_estimate, cap, price))


def worst_case_cost(prompt_tokens: int, output_tokens: int, price: Price) -> float:
    """USD of a call if the whole prompt is billed at the dearer input rate and all output used.

    No cache discount is assumed; if a profile lists a cached price above the input price,
    that one is the worst case.
    """
    input_price = max(price.input_per_mtok, price.cached_price)
    return (
        prompt_tokens * input_price * PER_TOKEN + output_tokens * price.output_per_mtok * PER_TOKEN
    )


def _affordable_output(remaining_usd: float, prompt_tokens: int, cap: int, price: Price) -> int:
    """The most output tokens (≤ ``cap``) whose worst case fits ``remaining_usd`` less slack.

    Returns -1 when not even the prompt fits. The division gives the answer up to float
    rounding; the walk then settles it by whole tokens with the very formula
    ``worst_case_cost`` uses, so the answer is exactly the largest count that formula accepts.
    """
    budget = remaining_usd - COST_EPSILON_USD
    prompt_cost = worst_case_cost(prompt_tokens, 0, price)
    if prompt_cost > budget:
        return -1
    limit = cap
    out_price = price.output_per_mtok * PER_TOKEN
    if out_price > 0:
        affordable = (budget - prompt_cost) / out_price
        if affordable < cap:
            cap = math.floor(affordable)
    while cap > 0 and worst_case_cost(prompt_tokens, cap, price) > budget:
        cap -= 1
    while cap < limit and worst_case_cost(prompt_tokens, cap + 1, price) <= budget:
        cap += 1
    return cap


def _bytes(text: str) -> int:
    # surrogatepass: a lone surrogate decoded from JSON must not crash the workflow.
    return len(text.encode("utf-8", "surrogatepass"))


def _tools_json(tools: list[ToolSpec]) -> str:
    """The tools as compact, ASCII-escaped JSON (how JSON clients put them on the wire)."""
    return json.dumps(
        [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in tools
        ],
        separators=(",", ":"),
        default=str,
    )


def _token_message(max_tokens: int, used: int, prompt: int, floor: int) -> str:
    remaining = max(max_tokens - used, 0)
    return (
        f"next call needs up to {prompt + floor:,} tokens (prompt ~{prompt:,} + output"
        f" ≥ {floor}) but only {remaining:,} of max_tokens={max_tokens:,} remain"
    )


def _cost_message(max_cost: float, used: float, prompt: int, floor: int, price: Price) -> str:
    needed = worst_case_cost(prompt, floor, price)
    remaining = max(max_cost - used, 0.0)
    return (
        f"next call may cost up to {_usd(needed)} (prompt ~{prompt:,} tokens + output"
        f" ≥ {floor} tokens at {_usd(price.input_per_mtok)} / {_usd(price.output_per_mtok)}"
        f" per million) but only {_usd(remaining)} of max_cost_usd={max_cost:g} remain"
    )


def _usd(value: float) -> str:
    """Dollars with enough digits for sub-cent calls: ``$0.00248``, ``$1.50``, ``$1,200.00``."""
    whole, fraction = f"{value:,.6f}".split(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"
