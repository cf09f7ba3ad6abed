"""The report's prompt-cache figures over hand-built steps: hit rate = cached / input tokens,
saved = the steps' cache_saved_usd (the workflow's cache_savings at the billed price)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keel.contracts import Price, RunResult, StepRecord, Usage, cache_savings, call_cost
from keel.report.caching import cache_rows
from keel.report.figures import build_report
from keel.report.html import render_html
from keel.report.models import RunRecord
from keel.report.tables import render_text

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
# Anthropic's ratios on a 4.00 USD input price: reads at 0.40, writes at 5.00 per million.
PRICE = Price(input_per_mtok=4.0, output_per_mtok=16.0, cached_input_per_mtok=0.4,
              cache_write_per_mtok=5.0)  # fmt: skip


def step(n: int, name: str, usage: Usage) -> StepRecord:
    saved = cache_savings(usage, PRICE) if usage.cached_tokens or usage.cache_write_tokens else None
    return StepRecord(step=n, kind="model", name=name, started_at=T0, usage=usage,
                      cost_usd=call_cost(usage, PRICE), cache_saved_usd=saved)  # fmt: skip


STEPS = [
    step(1, "claude", Usage(input_tokens=2000, output_tokens=10, cache_write_tokens=2000)),
    step(
        2,
        "claude",
        Usage(input_tokens=2500, output_tokens=10, cached_tokens=2000, cache_write_tokens=500),
    ),
    step(3, "other", Usage(input_tokens=1500, output_tokens=10)),
]


def test_savings_are_reads_at_the_discount_less_the_write_premium() -> None:
    usage = Usage(input_tokens=2500, cached_tokens=2000, cache_write_tokens=500)
    # 2000 read: (4.00 - 0.40) each; 500 written: (5.00 - 4.00) each, per million
    assert cache_savings(usage, PRICE) == pytest.approx((2000 * 3.6 - 500 * 1.0) / 1e6)
    plain = Usage(input_tokens=2500)
    assert call_cost(plain, PRICE) - call_cost(usage, PRICE) == pytest.approx(
        cache_savings(usage, PRICE)
    )


def test_hit_rate_and_savings_per_model_and_overall() -> None:
    rows = {r.model: r for r in cache_rows(STEPS)}
    assert list(rows) == ["*", "claude", "other"]
    total = rows["*"]
    assert (total.input_tokens, total.cached_tokens, total.cache_write_tokens) == (6000, 2000, 2500)
    assert total.hit_rate == pytest.approx(2000 / 6000)
    # step 1 paid the premium on 2000 written; step 2 read them and wrote 500
    expected = -2000 * 1.0 / 1e6 + (2000 * 3.6 - 500 * 1.0) / 1e6
    assert total.saved_usd == pytest.approx(expected)
    assert rows["claude"].hit_rate == pytest.approx(2000 / 4500)
    assert rows["other"].hit_rate == 0 and rows["other"].saved_usd == 0


def test_nothing_cached_is_no_rows_and_the_report_says_so() -> None:
    assert cache_rows(STEPS[2:]) == []
    result = RunResult(status="completed", profile="p", model="claude", steps=STEPS)
    report = build_report([RunRecord.of_result("wf", result)], since=T0, until=T0, query="q")
    text = render_text(report)
    assert "Prompt cache" in text and "33.3%" in text
    assert "Prompt cache" in render_html(report)
    empty = RunResult(status="completed", profile="p", model="other", steps=STEPS[2:])
    quiet = build_report([RunRecord.of_result("wf", empty)], since=T0, until=T0, query="q")
    assert "nothing cached" in render_text(quiet)
