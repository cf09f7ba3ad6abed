"""The eval's figures against numbers counted by hand."""

from __future__ import annotations

from typing import Literal

import pytest

from keel.contracts import FallbackRecord, RunResult
from keel.eval.figures import all_figures, config_figures, pass_k
from keel.eval.models import EvalReport, EvalRun
from keel.eval.report import comparison, render_text


def run(
    task: str, trial: int, passed: bool, cost: float, latency: float, **fields: object
) -> EvalRun:
    failure = None if passed else str(fields.pop("failure", "check:status"))
    return EvalRun(config=str(fields.pop("config", "a")), task=task, trial=trial,
                   workflow_id=f"eval-x-{task}-{trial}", status="completed", passed=passed,
                   failure=failure, cost_usd=cost, latency_seconds=latency,
                   **fields)  # type: ignore[arg-type]  # fmt: skip


# 3 tasks x 2 trials: t1 passes both, t2 one of two, t3 none.
RUNS = [
    run("t1", 1, True, 0.10, 1.0, interventions=1),
    run("t1", 2, True, 0.10, 2.0),
    run("t2", 1, True, 0.20, 3.0, interventions=2),
    run("t2", 2, False, 0.20, 4.0, failure="step_limit"),
    run("t3", 1, False, 0.30, 5.0, failure="step_limit"),
    run("t3", 2, False, 0.30, 10.0, failure="check:answer_contains"),
]


def test_figures_by_hand() -> None:
    f = config_figures("a", "profile:a", RUNS, 2)
    assert (f.runs, f.passed, f.tasks) == (6, 3, 3)
    assert f.success_rate == 3 / 6
    assert f.pass_k == 1 / 3  # only t1 passed 2 out of 2
    assert f.total_cost_usd == pytest.approx(1.2)
    assert f.cost_per_success_usd == pytest.approx(
        1.2 / 3
    )  # every run's cost over the passing runs
    # latencies 1 2 3 4 5 10: p50 = (3 + 4) / 2; p95 at rank 0.95 * 5 = 4.75: 5 + 0.75 * 5
    assert f.latency_p50_seconds == 3.5
    assert f.latency_p95_seconds == 8.75
    assert f.intervention_rate == 2 / 6
    assert f.failure_classes == {"step_limit": 2, "check:answer_contains": 1}
    assert list(f.failure_classes) == ["step_limit", "check:answer_contains"]


def test_a_failing_run_whose_fallback_completed_is_handed_over_not_unhandled() -> None:
    def result(status: Literal["completed", "failed"] | None) -> RunResult:
        fallback = (
            None
            if status is None
            else FallbackRecord(
                workflow="keel.fallback.ticket", workflow_id="w-fallback", status=status
            )
        )
        return RunResult(status="halted", profile="p", model="m", fallback=fallback)

    runs = [
        run("t1", 1, True, 0.1, 1.0),
        run("t2", 1, False, 0.1, 1.0, result=result("completed")),  # handed over
        run("t3", 1, False, 0.1, 1.0, result=result("failed")),  # its fallback failed
        run("t4", 1, False, 0.1, 1.0, result=result(None)),  # no fallback
    ]
    f = config_figures("a", "profile:a", runs, 1)
    assert (f.passed, f.handed_over, f.unhandled_rate) == (1, 1, 2 / 4)
    assert config_figures("a", "profile:a", RUNS, 2).unhandled_rate == 3 / 6


def test_nothing_passed_has_no_cost_per_success() -> None:
    f = config_figures("a", "profile:a", [run("t1", 1, False, 0.5, 1.0)], 1)
    assert (f.success_rate, f.pass_k, f.cost_per_success_usd) == (0.0, 0.0, None)
    empty = config_figures("a", "profile:a", [], 1)
    assert (empty.success_rate, empty.latency_p50_seconds, empty.intervention_rate) == (
        None, None, None,
    )  # fmt: skip


def test_pass_k_needs_every_trial() -> None:
    assert (
        pass_k([run("t1", 1, True, 0, 1), run("t1", 2, False, 0, 1), run("t2", 1, True, 0, 1)])
        == 0.5
    )


def test_configs_side_by_side_with_ratios_to_the_first() -> None:
    b_runs = [run("t1", 1, True, 0.05, 0.5, config="b"), run("t2", 1, True, 0.05, 0.5, config="b")]
    a_runs = [run("t1", 1, True, 0.10, 1.0), run("t2", 1, False, 0.10, 1.0)]
    figures = all_figures({"a": "profile:a", "b": "pipeline:p@a"}, a_runs + b_runs, 1)
    report = EvalReport(dataset="d", eval_id="x", k=1, seconds=1.0, configs=figures,
                        runs=a_runs + b_runs)  # fmt: skip
    headers, rows = comparison(report)
    assert headers == ["figure", "a", "b", "b/a"]
    by_label = {row[0]: row[1:] for row in rows}
    assert by_label["success rate"] == ["50.0%", "100.0%", "2.00x"]
    assert by_label["pass^1"] == ["50.0%", "100.0%", "2.00x"]
    assert by_label["cost per success"] == ["$0.200000", "$0.050000", "0.25x"]
    assert by_label["runs (passed)"] == ["2 (1)", "2 (2)", ""]
    text = render_text(report)
    assert "a t2 #1 [check:status]" in text
    assert "a: check:status 1" in text and "b: none" in text
