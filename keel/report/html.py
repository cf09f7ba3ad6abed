"""The report as one self-contained HTML page: inline CSS and inline SVG bar charts.

No JavaScript, no fonts, no CDN: the file opens offline, can be mailed or attached to a
ticket, and shows the same figures as the text tables. Charts are drawn by hand as SVG
rectangles (a charting library would bring JavaScript or a plotting stack into the CLI for
four bar charts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from keel.report import caching
from keel.report.models import Report
from keel.report.tables import (
    RETRY_HEADERS,
    TIER_HEADERS,
    TOOL_HEADERS,
    fallback_text,
    num,
    pct,
    retry_rows,
    tier_rows,
    tool_rows,
    usd,
    window_text,
)

LABEL_W = 220
BAR_W = 420
ROW_H = 22
COLORS = {"p50": "#4c78a8", "p95": "#f58518", "p99": "#e45756", "bar": "#4c78a8"}

BASE_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
       color: #222; padding: 0 1rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
svg text { font: 12px system-ui, sans-serif; fill: #222; }
"""
"""The look Keel's HTML reports share (the operations report's and the eval's)."""
_CSS = (
    BASE_CSS
    + """
.kpi { display: inline-block; margin: 0 1.5rem .5rem 0; }
.kpi b { display: block; font-size: 1.3rem; }
"""
)


@dataclass
class Bar:
    label: str
    value: float
    text: str
    color: str = COLORS["bar"]


def hbar_chart(
    title: str, groups: Sequence[tuple[str, Sequence[Bar]]], full_scale: float | None = None
) -> str:
    """Horizontal bars, one group per label (a group of one bar is a plain bar chart); a bar
    of ``full_scale`` (default: the largest value) spans the whole width."""
    peak = full_scale or max((bar.value for _, bars in groups for bar in bars), default=0.0) or 1.0
    rows: list[str] = []
    y = 0
    for label, bars in groups:
        rows.append(f'<text x="0" y="{y + 15}">{escape(label)}</text>')
        for bar in bars:
            width = max(0.0, bar.value) / peak * BAR_W
            rows.append(
                f'<rect x="{LABEL_W}" y="{y + 3}" width="{width:.1f}" height="{ROW_H - 6}"'
                f' fill="{bar.color}"><title>{escape(bar.text)}</title></rect>'
                f'<text x="{LABEL_W + width + 4:.1f}" y="{y + 15}">{escape(bar.text)}</text>'
            )
            y += ROW_H
        y += 4
    height = max(y, ROW_H)
    return (
        f'<svg role="img" aria-label="{escape(title)}" width="{LABEL_W + BAR_W + 140}"'
        f' height="{height}" xmlns="http://www.w3.org/2000/svg">{"".join(rows)}</svg>'
    )


def vbar_chart(title: str, bars: Sequence[Bar]) -> str:
    """Vertical bars with their labels underneath (the step-count histogram)."""
    plot_h, slot = 160, max(14, min(48, 640 // max(1, len(bars))))
    peak = max((b.value for b in bars), default=0.0) or 1.0
    parts = []
    for i, bar in enumerate(bars):
        h = bar.value / peak * plot_h
        x = i * slot
        parts.append(
            f'<rect x="{x + 2}" y="{plot_h - h + 16:.1f}" width="{slot - 4}" height="{h:.1f}"'
            f' fill="{bar.color}"><title>{escape(bar.text)}</title></rect>'
            f'<text x="{x + slot / 2:.1f}" y="{plot_h - h + 12:.1f}" text-anchor="middle">'
            f"{escape(bar.text)}</text>"
            f'<text x="{x + slot / 2:.1f}" y="{plot_h + 32}" text-anchor="middle">'
            f"{escape(bar.label)}</text>"
        )
    return (
        f'<svg role="img" aria-label="{escape(title)}" width="{max(1, len(bars)) * slot}"'
        f' height="{plot_h + 40}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _latency(report: Report) -> str:
    groups = [
        (
            f"{row.scope}: {row.name}",
            [
                Bar(
                    key,
                    getattr(row.latency_ms, key),
                    f"{key} {num(getattr(row.latency_ms, key))} ms",
                    COLORS[key],
                )
                for key in ("p50", "p95", "p99")
            ],
        )
        for row in report.latency
    ]
    table = html_table(
        ["scope / name", "steps", "p50", "p95", "p99", "mean", "max"],
        [
            [
                f"{r.scope}: {r.name}",
                str(r.latency_ms.count),
                num(r.latency_ms.p50),
                num(r.latency_ms.p95),
                num(r.latency_ms.p99),
                num(r.latency_ms.mean),
                num(r.latency_ms.max),
            ]
            for r in report.latency
        ],
    )
    return "<h2>Latency per step (ms)</h2>" + hbar_chart("latency percentiles", groups) + table


def _tokens_and_retries(report: Report) -> str:
    tokens = html_table(
        [
            "model",
            "steps",
            "input",
            "output",
            "cached",
            "total",
            "p50/step",
            "p95/step",
            "p99/step",
        ],
        [
            [
                t.model,
                str(t.steps),
                str(t.input_tokens),
                str(t.output_tokens),
                str(t.cached_tokens),
                str(t.total_tokens),
                num(t.per_step.p50),
                num(t.per_step.p95),
                num(t.per_step.p99),
            ]
            for t in report.tokens
        ],
    )
    retries = html_table(RETRY_HEADERS, retry_rows(report))
    cells = [caching.cells(r) for r in report.cache]
    cache = html_table(caching.HEADERS, cells) if cells else "<p>nothing cached</p>"
    return (
        f"<h2>Tokens per model step</h2>{tokens}<h2>Prompt cache</h2>{cache}"
        f"<h2>Retries</h2>{retries}"
    )


def _tiers(report: Report) -> str:
    """Model steps per routing tier (nothing when no run of the window was routed)."""
    if not report.tiers:
        return ""
    bars = [(t.tier, [Bar(t.tier, t.cost_usd, usd(t.cost_usd))]) for t in report.tiers]
    return (
        "<h2>Model steps per tier (routing)</h2>"
        + hbar_chart("cost per tier", bars)
        + html_table(TIER_HEADERS, tier_rows(report))
    )


def _tools(report: Report) -> str:
    bars = [
        (t.tool, [Bar(t.tool, (t.success_rate or 0.0) * 100, pct(t.success_rate))])
        for t in report.tools
    ]
    table = html_table(TOOL_HEADERS, tool_rows(report))
    return (
        "<h2>Tool success rate</h2><p>success = ok / (ok + tool_error + failed)</p>"
        + hbar_chart("tool success rates", bars, full_scale=100.0)
        + table
    )


def _runs(report: Report) -> str:
    counts = report.steps_per_run
    histogram = vbar_chart(
        "model calls per run",
        [Bar(str(b.value), b.runs, str(b.runs)) for b in counts.histogram],
    )
    d = counts.distribution
    summary = (
        f"<p>p50 {num(d.p50)} · p95 {num(d.p95)} · p99 {num(d.p99)} · mean {num(d.mean)}</p>"
        if d
        else ""
    )
    failures = hbar_chart(
        "failure classes",
        [(f.failure_class, [Bar(f.failure_class, f.runs, str(f.runs))]) for f in report.failures],
    )
    i = report.interventions
    t = i.time_to_decision_s
    decisions = ", ".join(f"{k} {n}" for k, n in i.decisions.items()) or "none"
    human = (
        f"<p>Runs with a human decision or guidance: {i.intervened_runs} of {i.runs}"
        f" ({pct(i.rate)}); guided runs {i.guided_runs}; decisions: {escape(decisions)}.</p>"
        + (
            f"<p>Time to a human decision: mean {num(t.mean, 2)} s, p50 {num(t.p50, 2)} s,"
            f" p95 {num(t.p95, 2)} s over {t.count} decisions.</p>"
            if t
            else ""
        )
    )
    return (
        f"<h2>Model calls per run ({counts.runs} runs with a result)</h2>"
        f"<p>Runs (bar height) by number of model calls (below each bar).</p>{histogram}{summary}"
        f"<h2>Human intervention</h2>{human}"
        f"<h2>Failure classes</h2>{failures if report.failures else '<p>none</p>'}"
    )


def render_html(report: Report) -> str:
    """The whole page; an empty window is a page that says so."""
    title = f"Keel operations report: {window_text(report)}"
    if report.runs == 0:
        body = f"<p>no finished runs between {escape(window_text(report))}</p>"
    else:
        c = report.cost
        outcomes = ", ".join(f"{k} {n}" for k, n in report.outcomes.items())
        kpis = "".join(
            f'<span class="kpi"><b>{escape(value)}</b>{escape(label)}</span>'
            for value, label in (
                (str(report.runs), "finished runs"),
                (usd(c.per_completion_usd), "cost per successful completion"),
                (usd(c.total_usd), "total cost"),
                (pct(report.interventions.rate), "human intervention rate"),
            )
        )
        body = (
            f"<p>{kpis}</p><p>Outcomes: {escape(outcomes)}</p>"
            f"<p>Fell back to a fallback workflow: {escape(fallback_text(report))}</p>"
            + _latency(report)
            + _tokens_and_retries(report)
            + _tiers(report)
            + _tools(report)
            + _runs(report)
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>\n"
    )
