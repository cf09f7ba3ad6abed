"""The report's per-tier figures: what each routing tier served (``[routing]``, docs/operations.md
"Model tiers and routing"). Pure computation over finished runs, like keel/report/figures.py.

A step counts for the tier its record names (``StepRecord.tier``; ``[model]`` when a routed
step had none) and for the reason its ``route`` names (``route_reason``). Steps of runs without
``[routing]`` have no route and are left out: the table is empty for a fleet that routes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from keel.contracts import ROUTE_REASONS, StepRecord, route_reason
from keel.report.models import RunRecord, TierRow

MODEL = "[model]"


def tier_rows(runs: Iterable[RunRecord]) -> list[TierRow]:
    """One row per tier that served a routed model step, most steps first (then by name)."""
    steps: dict[str, list[StepRecord]] = {}
    runs_on: Counter[str] = Counter()
    for run in runs:
        if run.result is None:
            continue
        seen: set[str] = set()
        for step in run.result.steps:
            if step.kind == "model" and step.route is not None:
                tier = step.tier or MODEL
                steps.setdefault(tier, []).append(step)
                seen.add(tier)
        runs_on.update(seen)
    rows = [_row(tier, records, runs_on[tier]) for tier, records in steps.items()]
    return sorted(rows, key=lambda row: (-row.steps, row.tier))


def _row(tier: str, steps: list[StepRecord], runs: int) -> TierRow:
    usages = [s.usage for s in steps if s.usage is not None]
    reasons = Counter(route_reason(s.route) for s in steps)
    order = {reason: index for index, reason in enumerate(ROUTE_REASONS)}
    return TierRow(
        tier=tier,
        runs=runs,
        steps=len(steps),
        input_tokens=sum(u.input_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
        cached_tokens=sum(u.cached_tokens for u in usages),
        total_tokens=sum(u.total_tokens for u in usages),
        cost_usd=sum(s.cost_usd or 0.0 for s in steps),
        reasons=dict(sorted(reasons.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))),
    )


def reasons_text(row: TierRow) -> str:
    """``first step 3, escalated 1``: a row's steps by reason, in ``ROUTE_REASONS`` order."""
    return ", ".join(f"{reason} {count}" for reason, count in row.reasons.items())
