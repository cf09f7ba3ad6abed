"""The operations report's figures over hand-built runs: exact expected values.

Latencies, tokens and prices are chosen so every expected figure is exact in binary floating
point; percentiles are worked out by hand with the documented method (linear interpolation
between closest ranks: rank h = (n - 1) * p / 100).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
from temporalio.exceptions import ApplicationError

from keel.contracts import (
    DecisionRecord,
    FallbackRecord,
    RunResult,
    StepOutcome,
    StepRecord,
    Usage,
)
from keel.contracts.errors import InputError
from keel.report.collect import parse_time, visibility_query, workflow_failure_class
from keel.report.command import window
from keel.report.figures import (
    TOOL_OUTCOMES,
    build_report,
    histogram,
    percentile,
)
from keel.report.html import render_html
from keel.report.models import Report, RunRecord
from keel.report.tables import render_text

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SINCE, UNTIL = T0 - timedelta(days=1), T0 + timedelta(hours=1)


def model(step: int, name: str, latency: float, tokens: tuple[int, int, int], attempts: int = 1):
    usage = Usage(input_tokens=tokens[0], output_tokens=tokens[1], cached_tokens=tokens[2])
    return StepRecord(
        step=step,
        kind="model",
        name=name,
        started_at=T0,
        latency_ms=latency,
        usage=usage,
        attempts=attempts,
    )


def tool(
    step: int, name: str, outcome: StepOutcome, latency: float = 0.0, attempts: int = 1, **kw: Any
):
    return StepRecord(
        step=step,
        kind="tool",
        name=name,
        started_at=T0,
        latency_ms=latency,
        outcome=outcome,
        attempts=attempts,
        **kw,
    )


def decision(kind: str, waited: float | None, by: str | None = "alice") -> DecisionRecord:
    requested = T0 if waited is not None else None
    return DecisionRecord(
        approval_id=f"a-{kind}",
        tool="refund_order",
        decision=kind,  # type: ignore[arg-type]
        by=by,
        at=T0 + timedelta(seconds=waited or 0),
        requested_at=requested,
    )


def result(status: str, steps: list[StepRecord], cost: float, **kw: Any) -> RunResult:
    return RunResult(
        status=status,  # type: ignore[arg-type]
        profile="p",
        model="m1",
        steps=steps,
        model_calls=max((s.step for s in steps), default=0),
        cost_usd=cost,
        **kw,
    )


def runs() -> list[RunRecord]:
    a = result(
        "completed",
        [
            model(1, "m1", 100, (100, 20, 10)),
            tool(1, "get_order", "ok", 200, server="support_desk"),
            tool(1, "get_order", "tool_error", 300, attempts=2, server="support_desk"),
            model(2, "m1", 300, (200, 30, 0), attempts=3),
        ],
        0.25,
        approvals=[decision("approve", 30), decision("reject", 90)],
    )
    b = result(
        "halted",
        [
            model(1, "m2", 500, (50, 5, 0)),
            tool(1, "refund_order", "invalid", validation="schema: amount"),
            tool(1, "get_order", "failed", 400, server="support_desk"),
        ],
        0.5,
        stop_reason="step_limit",
        failure_class="step_limit",
        guidance=1,
        approvals=[decision("timeout", 600, by=None)],
        fallback=FallbackRecord(
            workflow="keel.fallback.ticket",
            workflow_id="wf-b-fallback",
            status="completed",
            ticket_id="TCK-5006",
        ),
    )
    c = result(
        "completed",
        [model(1, "m1", 200, (100, 10, 0))],
        0.125,
        approvals=[decision("refused", None, by="mallory")],
    )
    return [
        RunRecord.of_result("wf-a", a),
        RunRecord.of_result("wf-b", b),
        RunRecord.of_result("wf-c", c),
        RunRecord(
            workflow_id="wf-d", run_id="r", profile="p", end="failed", failure_class="invalid_input"
        ),
        RunRecord(
            workflow_id="wf-e",
            run_id="r",
            profile="p",
            end="terminated",
            failure_class="terminated",
        ),
    ]


@pytest.fixture
def report() -> Report:
    return build_report(runs(), since=SINCE, until=UNTIL, query="q")


# ------------------------------------------------------------------------- percentiles


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4], 95) == 3.85
    assert percentile([1, 2, 3, 4], 99) == 3.97
    assert percentile([10, 20], 1) == 10.1
    assert percentile([7], 99) == 7.0


def test_percentile_rejects_empty_samples_and_bad_ranks() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"1\.\.99"):
        percentile([1, 2], 100)


# ------------------------------------------------------------------------- figures


def test_runs_outcomes_and_cost_per_successful_completion(report: Report) -> None:
    assert report.runs == 5
    assert report.outcomes == {"completed": 2, "failed": 1, "halted": 1, "terminated": 1}
    assert report.cost.total_usd == 0.875  # the halted run's spend counts too
    assert report.cost.completed == 2
    assert report.cost.per_completion_usd == 0.4375


def test_latency_per_kind_model_and_tool(report: Report) -> None:
    rows = {(r.scope, r.name): r.latency_ms for r in report.latency}
    assert list(rows) == [
        ("kind", "model"),
        ("kind", "tool"),
        ("model", "m1"),
        ("model", "m2"),
        ("tool", "get_order"),
    ]
    models = rows["kind", "model"]  # 100 200 300 500
    assert (models.count, models.min, models.max, models.mean) == (4, 100, 500, 275)
    assert (models.p50, models.p95, models.p99) == (250, 470, 494)
    tools = rows["kind", "tool"]  # 200 300 400: the refused call never ran, it is left out
    assert (tools.count, tools.p50, tools.p95, tools.p99) == (3, 300, 390, 398)
    m1 = rows["model", "m1"]  # 100 200 300
    assert (m1.p50, m1.p95, m1.p99) == (200, 290, 298)
    m2 = rows["model", "m2"]
    assert (m2.count, m2.p50, m2.p95, m2.p99) == (1, 500, 500, 500)
    assert rows["tool", "get_order"] == tools


def test_tokens_per_model_step(report: Report) -> None:
    overall, m1, m2 = report.tokens
    assert (overall.model, overall.steps) == ("*", 4)
    assert (overall.input_tokens, overall.output_tokens, overall.cached_tokens) == (450, 65, 10)
    assert overall.total_tokens == 515
    per_step = overall.per_step  # 55 110 120 230
    assert (per_step.p50, per_step.p95, per_step.p99, per_step.mean) == (115, 213.5, 226.7, 128.75)
    assert (m1.model, m1.steps, m1.total_tokens, m1.per_step.p50) == ("m1", 3, 460, 120)
    assert (m2.model, m2.steps, m2.total_tokens) == ("m2", 1, 55)


def test_tool_success_rate_counts_only_calls_that_reached_the_server(report: Report) -> None:
    get_order, refund = report.tools
    assert get_order.tool == "get_order"
    assert get_order.server == "support_desk"
    assert get_order.outcomes == {
        "ok": 1,
        "tool_error": 1,
        "failed": 1,
        "invalid": 0,
        "refused": 0,
        "rejected": 0,
    }
    assert (get_order.calls, get_order.executed, get_order.succeeded) == (3, 3, 1)
    assert get_order.success_rate == 1 / 3
    assert (refund.tool, refund.calls, refund.executed, refund.server) == (
        "refund_order",
        1,
        0,
        None,
    )
    assert refund.success_rate is None


def test_every_step_outcome_has_a_column() -> None:
    assert set(TOOL_OUTCOMES) == set(get_args(StepOutcome))


def test_retry_rate_and_extra_attempts(report: Report) -> None:
    rows = {r.scope: r for r in report.retries}
    assert (rows["all"].steps, rows["all"].retried_steps, rows["all"].extra_attempts) == (7, 2, 3)
    assert rows["all"].retry_rate == 2 / 7
    assert rows["all"].extra_attempts_per_step == 3 / 7
    assert (rows["model"].steps, rows["model"].retried_steps, rows["model"].extra_attempts) == (
        4,
        1,
        2,
    )
    assert (rows["tool"].steps, rows["tool"].retried_steps, rows["tool"].extra_attempts) == (
        3,
        1,
        1,
    )


def test_step_count_distribution_over_runs_with_a_result(report: Report) -> None:
    counts = report.steps_per_run
    assert counts.runs == 3  # the failed and the terminated run have no steps to count
    assert [(b.value, b.runs) for b in counts.histogram] == [(1, 2), (2, 1)]
    assert counts.distribution is not None
    assert (counts.distribution.p50, counts.distribution.max) == (1, 2)
    assert counts.distribution.mean == 4 / 3


def test_human_intervention_rate_and_time_to_decision(report: Report) -> None:
    i = report.interventions
    # a: approve + reject (human); b: guided (its timeout is no human); c: a refused decision only
    assert (i.runs, i.intervened_runs, i.guided_runs) == (5, 2, 1)
    assert i.rate == 0.4
    assert i.decisions == {"approve": 1, "refused": 1, "reject": 1, "timeout": 1}
    assert i.human_decisions == 2
    assert i.time_to_decision_s is not None
    assert (i.time_to_decision_s.count, i.time_to_decision_s.mean) == (2, 60)


def test_failure_classes_from_results_and_from_temporal(report: Report) -> None:
    assert [(f.failure_class, f.runs) for f in report.failures] == [
        ("invalid_input", 1),
        ("step_limit", 1),
        ("terminated", 1),
    ]


def test_histogram_fills_gaps_only_for_a_readable_range() -> None:
    assert [(b.value, b.runs) for b in histogram([1, 3, 3])] == [(1, 1), (2, 0), (3, 2)]
    assert [(b.value, b.runs) for b in histogram([1, 500])] == [(1, 1), (500, 1)]
    assert histogram([]) == []


def test_empty_window_has_no_figures() -> None:
    empty = build_report([], since=SINCE, until=UNTIL, query="q")
    assert (empty.runs, empty.cost.per_completion_usd, empty.interventions.rate) == (0, None, None)
    assert empty.latency == empty.tokens == empty.tools == empty.failures == []
    assert render_text(empty) == (
        "no finished runs between 2026-01-04 12:00:00 and 2026-01-05 13:00:00 UTC"
    )


# ------------------------------------------------------------------------- collection helpers


def test_window_accepts_durations_and_iso_times() -> None:
    now = T0
    assert parse_time("24h", "--since", now) == T0 - timedelta(hours=24)
    assert parse_time("7d", "--since", now) == T0 - timedelta(days=7)
    assert parse_time("30m", "--since", now) == T0 - timedelta(minutes=30)
    assert parse_time("now", "--until", now) == T0
    assert parse_time("2026-01-01", "--since", now) == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_time("2026-01-01T12:00:00+02:00", "--since", now) == datetime(
        2026, 1, 1, 10, tzinfo=UTC
    )


@pytest.mark.parametrize(("since", "until"), [("yesterday", "now"), ("1h", "2h"), ("5x", "now")])
def test_bad_window_is_an_input_error(since: str, until: str) -> None:
    with pytest.raises(InputError, match="--since"):
        window(since, until, now=T0)


def test_visibility_query_selects_closed_agent_and_pipeline_runs_in_the_window() -> None:
    query = visibility_query(SINCE, UNTIL, "WorkflowId STARTS_WITH 'x-'")
    assert query == (
        "(WorkflowType = 'AgentWorkflow' OR WorkflowType STARTS_WITH 'keel.pipeline.')"
        " AND ExecutionStatus != 'Running'"
        " AND ExecutionStatus != 'ContinuedAsNew'"
        " AND CloseTime >= '2026-01-04T12:00:00.000000Z'"
        " AND CloseTime <= '2026-01-05T13:00:00.000000Z' AND (WorkflowId STARTS_WITH 'x-')"
    )


def test_workflow_failures_are_classified_by_error_type() -> None:
    assert workflow_failure_class(ApplicationError("x", type="InvalidInput")) == "invalid_input"
    assert workflow_failure_class(ApplicationError("x", type="ProfileError")) == "config_error"
    assert workflow_failure_class(ApplicationError("x", type="Whatever")) == "internal"
    assert workflow_failure_class(None) == "internal"


def test_runs_that_fell_back_are_counted_by_the_fallbacks_outcome(report: Report) -> None:
    assert report.fallbacks == {"completed": 1}
    assert "  fell back: 1 run (completed 1)" in render_text(report).splitlines()
    assert "Fell back to a fallback workflow: 1 run (completed 1)" in render_html(report)
    none = build_report(runs()[2:], since=SINCE, until=UNTIL, query="q")
    assert none.fallbacks == {} and "  fell back: none" in render_text(none).splitlines()


# ------------------------------------------------------------------------- rendering


def test_text_tables_show_the_figures(report: Report) -> None:
    text = render_text(report)
    assert "5 finished runs between 2026-01-04 12:00:00 and 2026-01-05 13:00:00 UTC" in text
    assert "$0.437500" in text  # per successful completion
    assert "33.3%" in text  # get_order success rate
    assert "40.0%" in text  # intervention rate
    lines = text.splitlines()
    model_row = next(line for line in lines if line.split()[:2] == ["kind", "model"])
    assert model_row.split()[2:6] == ["4", "250.0", "470.0", "494.0"]


def test_html_page_is_self_contained_with_charts(report: Report) -> None:
    page = render_html(report)
    assert page.count("<svg") == 4  # latency, tool success, step-count histogram, failures
    assert "<script" not in page
    assert "src=" not in page and "href=" not in page  # nothing to fetch: works offline
    assert "invalid_input" in page and "$0.437500" in page


def test_report_round_trips_as_json(report: Report) -> None:
    assert Report.model_validate_json(report.model_dump_json()) == report
