"""The report as aligned plain-text tables (the default output of ``keel report``).

Hand-written with the standard library: a dozen lines of column alignment do not justify a
table dependency in the CLI (rich/tabulate), and the output stays stable for tests and pipes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from keel.report import caching
from keel.report.figures import TOOL_OUTCOMES
from keel.report.models import Distribution, Report
from keel.report.tiers import reasons_text

BAR_WIDTH = 40
_NUMBER = re.compile(r"^[-$]?[\d,]+(\.\d+)?%?$")


def usd(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 1 else f"${value:.6f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def window_text(report: Report) -> str:
    span = f"{report.since:%Y-%m-%d %H:%M:%S} and {report.until:%Y-%m-%d %H:%M:%S} UTC"
    return span + (f" (profile {report.profile})" if report.profile else "")


# Tables the text and the HTML page show alike.
TOOL_HEADERS = ["tool", "server", "calls", *TOOL_OUTCOMES, "success"]
RETRY_HEADERS = ["scope", "steps", "retried", "retry rate", "extra attempts", "extra per step"]


def tool_rows(report: Report) -> list[list[str]]:
    return [
        [
            t.tool,
            t.server or "-",
            str(t.calls),
            *(str(t.outcomes.get(outcome, 0)) for outcome in TOOL_OUTCOMES),
            pct(t.success_rate),
        ]
        for t in report.tools
    ]


def retry_rows(report: Report) -> list[list[str]]:
    return [
        [
            r.scope,
            str(r.steps),
            str(r.retried_steps),
            pct(r.retry_rate),
            str(r.extra_attempts),
            num(r.extra_attempts_per_step, 3),
        ]
        for r in report.retries
    ]


TIER_HEADERS = ["tier", "runs", "steps", "input", "output", "cached", "total", "cost", "why"]


def tier_rows(report: Report) -> list[list[str]]:
    """The per-tier table's cells: steps, tokens, cost and why the steps were routed there."""
    return [
        [
            t.tier,
            str(t.runs),
            str(t.steps),
            str(t.input_tokens),
            str(t.output_tokens),
            str(t.cached_tokens),
            str(t.total_tokens),
            usd(t.cost_usd),
            reasons_text(t),
        ]
        for t in report.tiers
    ]


def _tier_section(report: Report) -> list[str]:
    """Model steps per routing tier; nothing for a window where no run was routed."""
    if not report.tiers:
        return []
    return ["", "Model steps per tier (routing)", table(TIER_HEADERS, tier_rows(report))]


def _numeric(cell: str) -> bool:
    return cell == "-" or bool(_NUMBER.match(cell))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Columns padded to their widest cell: numbers right-aligned, words left-aligned."""
    columns = list(zip(headers, *rows, strict=True))
    widths = [max(len(cell) for cell in column) for column in columns]
    right = [all(_numeric(cell) for cell in column[1:]) for column in columns]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if align else cell.ljust(width)
            for cell, width, align in zip(cells, widths, right, strict=True)
        ]
        return (indent + "  ".join(parts)).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def _dist_cells(d: Distribution, digits: int = 1) -> list[str]:
    return [
        str(d.count),
        num(d.p50, digits),
        num(d.p95, digits),
        num(d.p99, digits),
        num(d.mean, digits),
        num(d.max, digits),
    ]


def fallback_text(report: Report) -> str:
    """``2 runs (completed 1, failed 1)``: the runs a fallback workflow took over."""
    total = sum(report.fallbacks.values())
    if not total:
        return "none"
    by_status = ", ".join(f"{status} {n}" for status, n in report.fallbacks.items())
    return f"{total} run{'' if total == 1 else 's'} ({by_status})"


def _runs_section(report: Report) -> list[str]:
    outcomes = ", ".join(f"{name} {n}" for name, n in report.outcomes.items())
    runs = f"{report.runs} finished run" + ("" if report.runs == 1 else "s")
    lines = [
        f"Keel operations report: {runs} between {window_text(report)}",
        f"  outcomes: {outcomes}",
        f"  fell back: {fallback_text(report)}",
    ]
    if report.truncated:
        lines.append("  (the --limit was reached: older runs of the window are not included)")
    if report.unreadable:
        lines.append(f"  ({report.unreadable} runs could not be read and are not included)")
    c = report.cost
    lines += [
        "",
        "Cost",
        table(
            ["total", "runs", "completed", "per successful completion"],
            [[usd(c.total_usd), str(c.runs), str(c.completed), usd(c.per_completion_usd)]],
        ),
    ]
    return lines


def _step_sections(report: Report) -> list[str]:
    lines = ["", "Latency per step (ms)"]
    lines.append(
        table(
            ["scope", "name", "steps", "p50", "p95", "p99", "mean", "max"],
            [[r.scope, r.name, *_dist_cells(r.latency_ms)] for r in report.latency],
        )
        if report.latency
        else "  no steps"
    )
    lines += ["", "Tokens per model step"]
    lines.append(
        table(
            [
                "model",
                "input",
                "output",
                "cached",
                "total",
                "steps",
                "p50",
                "p95",
                "p99",
                "mean",
                "max",
            ],
            [
                [
                    r.model,
                    str(r.input_tokens),
                    str(r.output_tokens),
                    str(r.cached_tokens),
                    str(r.total_tokens),
                    *_dist_cells(r.per_step),
                ]
                for r in report.tokens
            ],
        )
        if report.tokens
        else "  no model steps"
    )
    lines += ["", caching.TITLE]
    cells = [caching.cells(r) for r in report.cache]
    lines.append(table(caching.HEADERS, cells) if cells else "  nothing cached")
    lines += ["", "Tool calls (success = ok / (ok + tool_error + failed))"]
    lines.append(table(TOOL_HEADERS, tool_rows(report)) if report.tools else "  no tool calls")
    lines += ["", "Retries (executed steps)"]
    lines.append(table(RETRY_HEADERS, retry_rows(report)))
    return lines


def _run_sections(report: Report) -> list[str]:
    counts = report.steps_per_run
    lines = ["", f"Model calls per run ({counts.runs} runs with a result)"]
    if counts.distribution is not None:
        d = counts.distribution
        lines.append(f"  p50 {num(d.p50)}  p95 {num(d.p95)}  p99 {num(d.p99)}  mean {num(d.mean)}")
        peak = max(b.runs for b in counts.histogram)
        width = len(str(counts.histogram[-1].value))
        for b in counts.histogram:
            bar = "#" * round(BAR_WIDTH * b.runs / peak) if peak else ""
            lines.append(f"  {str(b.value).rjust(width)} | {bar} {b.runs}".rstrip())
    i = report.interventions
    decisions = ", ".join(f"{k} {n}" for k, n in i.decisions.items()) or "none"
    lines += [
        "",
        "Human intervention",
        f"  runs with a human decision or guidance: {i.intervened_runs} of {i.runs}"
        f" ({pct(i.rate)}); guided runs: {i.guided_runs}",
        f"  decisions: {decisions}",
    ]
    if i.time_to_decision_s is not None:
        t = i.time_to_decision_s
        lines.append(
            f"  time to a human decision (s): mean {num(t.mean, 2)}  p50 {num(t.p50, 2)}"
            f"  p95 {num(t.p95, 2)}  max {num(t.max, 2)}"
            f"  ({t.count} decision{'' if t.count == 1 else 's'})"
        )
    lines += ["", "Failure classes"]
    lines.append(
        table(["class", "runs"], [[f.failure_class, str(f.runs)] for f in report.failures])
        if report.failures
        else "  none"
    )
    return lines


def render_text(report: Report) -> str:
    """The whole report as text; an empty window is one sentence."""
    if report.runs == 0:
        return f"no finished runs between {window_text(report)}"
    return "\n".join([*_runs_section(report), *_step_sections(report), *_tier_section(report),
                      *_run_sections(report)])  # fmt: skip
