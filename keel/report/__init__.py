"""``keel report``: latency, tokens, tool success, retries, cost per completion, step counts,
human intervention and failure classes over the finished runs of a time window.

``collect`` reads Temporal (visibility, then each run's result), ``figures`` computes the
``Report`` (pure), ``tables`` and ``html`` render it. Definitions: docs/operations.md.
"""

from keel.report.command import add_arguments, make_report, run_report
from keel.report.figures import build_report, percentile
from keel.report.models import Report, RunRecord

__all__ = [
    "Report",
    "RunRecord",
    "add_arguments",
    "build_report",
    "make_report",
    "percentile",
    "run_report",
]
