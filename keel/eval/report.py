"""The eval report as text (the terminal) and JSON; configurations side by side, each after
the first with its ratio to the first (``hybrid/agent 0.50x``: half the first's value)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from keel.eval.models import ConfigFigures, EvalReport, EvalRun
from keel.report.tables import pct, table, usd

FigureRow = tuple[str, Callable[[ConfigFigures], float | None], Callable[[float | None], str]]


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def figure_rows(k: int) -> list[FigureRow]:
    """The compared figures: label, value, how it is shown."""
    return [
        ("success rate", lambda f: f.success_rate, pct),
        (f"pass^{k}", lambda f: f.pass_k, pct),
        ("cost per success", lambda f: f.cost_per_success_usd, usd),
        ("latency p50", lambda f: f.latency_p50_seconds, seconds),
        ("latency p95", lambda f: f.latency_p95_seconds, seconds),
        ("intervention rate", lambda f: f.intervention_rate, pct),
        ("unhandled rate", lambda f: f.unhandled_rate, pct),
        ("total cost", lambda f: f.total_cost_usd, usd),
    ]


def ratio(value: float | None, base: float | None) -> str:
    if value is None or base is None or base == 0:
        return "-"
    return f"{value / base:.2f}x"


def comparison(report: EvalReport) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the side-by-side table (shared by text and HTML)."""
    configs = report.configs
    first = configs[0] if configs else None
    headers = ["figure"]
    for index, figures in enumerate(configs):
        headers.append(figures.config)
        if index and first is not None:
            headers.append(f"{figures.config}/{first.config}")
    rows: list[list[str]] = []
    for label, value, show in figure_rows(report.k):
        row = [label]
        for index, figures in enumerate(configs):
            row.append(show(value(figures)))
            if index and first is not None:
                row.append(ratio(value(figures), value(first)))
        rows.append(row)
    counts = ["runs (passed)"]
    for index, figures in enumerate(configs):
        counts.append(f"{figures.runs} ({figures.passed})")
        if index:
            counts.append("")
    rows.append(counts)
    return headers, rows


def task_rows(report: EvalReport) -> tuple[list[str], list[list[str]]]:
    """Per task, the trials that passed per configuration (``2/2``)."""
    names = [figures.config for figures in report.configs]
    tasks = list(dict.fromkeys(run.task for run in report.runs))
    rows = []
    for task in tasks:
        row = [task]
        for name in names:
            runs = [r for r in report.runs if r.task == task and r.config == name]
            row.append(f"{sum(r.passed for r in runs)}/{len(runs)}" if runs else "")
        rows.append(row)
    return ["task", *names], rows


def failing_lines(runs: Sequence[EvalRun]) -> list[str]:
    """One line per failing run: where, and the first failed check's reason."""
    lines = []
    for run in runs:
        if run.passed:
            continue
        reasons = [c.reason for c in run.checks if not c.passed] or [run.error or run.status]
        more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
        lines.append(
            f"  {run.config} {run.task} #{run.trial} [{run.failure}] {reasons[0]}{more}"
            f"  ({run.workflow_id})"
        )
    return lines


def render_text(report: EvalReport) -> str:
    runs = len(report.runs)
    lines = [
        f"eval {report.dataset}: {runs} runs ({report.k} trial(s) per task), eval id"
        f" {report.eval_id}, {report.seconds:.1f}s",
        "",
        table(*comparison(report)),
        "",
        "failure classes (failing runs)",
    ]
    for figures in report.configs:
        classes = ", ".join(f"{name} {count}" for name, count in figures.failure_classes.items())
        lines.append(f"  {figures.config}: {classes or 'none'}")
    lines += ["", "tasks (trials passed)", table(*task_rows(report))]
    failing = failing_lines(report.runs)
    if failing:
        lines += ["", "failing runs", *failing]
    return "\n".join(lines)


def render_json(report: EvalReport) -> str:
    return report.model_dump_json(indent=2)
