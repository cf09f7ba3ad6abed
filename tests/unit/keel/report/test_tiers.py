"""The report's per-tier table (keel/report/tiers.py): steps, tokens, cost and why counts of
the model steps each routing tier served, over hand-built runs with exact figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keel.contracts import RunResult, StepRecord, Usage
from keel.report.figures import build_report
from keel.report.html import render_html
from keel.report.models import Report, RunRecord
from keel.report.tables import render_text

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def step(n: int, tier: str | None, route: str | None, tokens: int, cost: float) -> StepRecord:
    usage = Usage(input_tokens=tokens, output_tokens=tokens // 4, cached_tokens=tokens // 2)
    return StepRecord(step=n, kind="model", name=f"sim/{tier}", started_at=T0, usage=usage,
                      tier=tier, route=route, cost_usd=cost)  # fmt: skip


def run(workflow_id: str, *steps: StepRecord) -> RunRecord:
    result = RunResult(status="completed", profile="p", model="m", steps=list(steps),
                       model_calls=len(steps))  # fmt: skip
    return RunRecord.of_result(workflow_id, result)


def report(*runs: RunRecord) -> Report:
    return build_report(list(runs), since=T0 - timedelta(days=1), until=T0, query="q")


ROUTED = run(
    "a",
    step(1, "fast", "first step", 400, 0.25),
    step(2, "strong", "escalated after a tool error at step 1", 800, 2.0),
    step(3, "fast", "de-escalated from strong after 1 clean step at step 2", 200, 0.125),
    step(4, "strong", "final answer after fast answered at step 3", 400, 1.0),
)
ALSO_FAST = run(
    "b", step(1, "fast", "first step", 100, 0.0625), step(2, None, "tool step", 40, 0.5)
)
UNROUTED = run("c", step(1, None, None, 1000, 8.0))


def test_each_tier_counts_its_steps_tokens_cost_and_reasons() -> None:
    fast, strong, model = report(ROUTED, ALSO_FAST, UNROUTED).tiers
    assert (fast.tier, fast.runs, fast.steps) == ("fast", 2, 3)
    assert (fast.input_tokens, fast.output_tokens, fast.cached_tokens) == (700, 175, 350)
    assert fast.total_tokens == 875 and fast.cost_usd == 0.4375
    assert fast.reasons == {"first step": 2, "de-escalated": 1}
    assert (strong.tier, strong.runs, strong.steps, strong.cost_usd) == ("strong", 1, 2, 3.0)
    assert strong.reasons == {"escalated": 1, "final answer": 1}
    # a routed step served by [model] (an unset kind) is counted as such; unrouted ones are not
    assert (model.tier, model.steps, model.cost_usd) == ("[model]", 1, 0.5)
    assert model.reasons == {"tool step": 1}


def test_a_window_without_routed_runs_has_no_tier_section() -> None:
    plain = report(UNROUTED)
    assert plain.tiers == []
    assert "per tier" not in render_text(plain) and "per tier" not in render_html(plain)


def test_the_text_and_html_reports_show_the_tier_table() -> None:
    figures = report(ROUTED, ALSO_FAST)
    lines = render_text(figures).splitlines()
    start = lines.index("Model steps per tier (routing)")
    header, first = lines[start + 1].split(), lines[start + 2]
    assert header == ["tier", "runs", "steps", "input", "output", "cached", "total", "cost", "why"]
    assert first.split()[:8] == ["fast", "2", "3", "700", "175", "350", "875", "$0.437500"]
    assert first.endswith("first step 2, de-escalated 1")
    page = render_html(figures)
    assert "<h2>Model steps per tier (routing)</h2>" in page
    assert "escalated 1, final answer 1" in page
    assert Report.model_validate_json(figures.model_dump_json()).tiers == figures.tiers
