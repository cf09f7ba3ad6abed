"""The eval report as one self-contained HTML page (inline CSS and SVG, no JavaScript), in the
manner of the operations report (keel/report/html.py, whose table and bar chart it uses):
the side-by-side figures, success rate per configuration as bars, the tasks, failing runs."""

from __future__ import annotations

from html import escape

from keel.eval.models import EvalReport
from keel.eval.report import comparison, failing_lines, task_rows
from keel.report.html import BASE_CSS, Bar, hbar_chart, html_table
from keel.report.tables import pct

PASS_K_COLOR = "#f58518"
_CSS = (
    BASE_CSS
    + """
body { max-width: 70rem; }
pre { white-space: pre-wrap; font-size: 12px; }
"""
)


def render_html(report: EvalReport) -> str:
    title = f"Keel eval: {report.dataset}"
    groups = [
        (
            f.config,
            [
                Bar("success", f.success_rate or 0.0, f"success {pct(f.success_rate)}"),
                Bar("pass^k", f.pass_k or 0.0, f"pass^{report.k} {pct(f.pass_k)}", PASS_K_COLOR),
            ],
        )
        for f in report.configs
    ]
    failures = "".join(
        f"<h3>{escape(f.config)}</h3>"
        + html_table(["failure class", "runs"], [[n, str(c)] for n, c in f.failure_classes.items()])
        for f in report.configs
        if f.failure_classes
    )
    failing = "\n".join(line.strip() for line in failing_lines(report.runs))
    body = (
        f"<p>{escape(report.description)}</p>"
        f"<p>{len(report.runs)} runs, {report.k} trial(s) per task, eval id"
        f" {escape(report.eval_id)}, {report.seconds:.1f}s</p>"
        "<h2>Configurations</h2>"
        + html_table(*comparison(report))
        + "<p>"
        + ", ".join(escape(f"{f.config} = {f.spec}") for f in report.configs)
        + "</p>"
        + hbar_chart("Success rate and pass^k", groups, 1.0)
        + "<h2>Failure classes</h2>"
        + (failures or "<p>none</p>")
        + "<h2>Tasks (trials passed)</h2>"
        + html_table(*task_rows(report))
        + ("<h2>Failing runs</h2><pre>" + escape(failing) + "</pre>" if failing else "")
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>\n"
    )
