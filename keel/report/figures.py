"""Pure computation of the operations report from finished runs (no I/O, no clock).

Kept apart from collection so the figures can be tested with hand-built ``RunResult``s and
exact expected values. Definitions (which steps count where) are in docs/operations.md.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from keel.contracts import StepRecord
from keel.report.caching import cache_rows
from keel.report.models import (
    CostFigures,
    Distribution,
    FailureRow,
    HistogramBin,
    Interventions,
    LatencyRow,
    LatencyScope,
    Report,
    RetryRow,
    RetryScope,
    RunRecord,
    StepCounts,
    TokenRow,
    ToolRow,
)
from keel.report.tiers import tier_rows

TOOL_OUTCOMES: tuple[str, ...] = (
    "ok",
    "tool_error",
    "failed",
    "invalid",
    "refused",
    "rejected",
)
# Outcomes of a tool call that reached the server; the others were stopped before it
# (validation, limits, a human's rejection) and took no time and no attempt.
EXECUTED: frozenset[str] = frozenset({"ok", "tool_error", "failed"})
HUMAN_DECISIONS: frozenset[str] = frozenset({"approve", "reject", "edit"})
# Gaps between step counts are filled with empty bins up to this many bins.
MAX_FILLED_BINS = 100


def percentile(values: Sequence[float], p: int) -> float:
    """The ``p``-th percentile (1..99) by linear interpolation between closest ranks.

    Rank ``h = (n - 1) * p / 100`` of the sorted sample, interpolated between its neighbours:
    Hyndman & Fan type 7, numpy's default, ``statistics.quantiles(method="inclusive")``. Its
    results stay within the observed values, which suits small samples of latencies.
    """
    if not 1 <= p <= 99:
        raise ValueError(f"percentile must be 1..99, got {p}")
    if not values:
        raise ValueError("percentile of an empty sample")
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    return float(statistics.quantiles(data, n=100, method="inclusive")[p - 1])


def summarize(values: Sequence[float]) -> Distribution:
    """Count, extremes, mean and p50/p95/p99 of a non-empty sample."""
    return Distribution(
        count=len(values),
        min=float(min(values)),
        max=float(max(values)),
        mean=statistics.fmean(values),
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        p99=percentile(values, 99),
    )


def distribution(values: Sequence[float]) -> Distribution | None:
    return summarize(values) if values else None


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def executed_steps(runs: Iterable[RunRecord]) -> list[StepRecord]:
    """Steps that made a call: every model step, tool steps that reached their server."""
    return [
        step
        for run in runs
        if run.result is not None
        for step in run.result.steps
        if step.kind == "model" or step.outcome in EXECUTED
    ]


def latency_rows(steps: Sequence[StepRecord]) -> list[LatencyRow]:
    """Per kind (model, tool), then per model, then per tool; names sorted."""
    groups: dict[tuple[LatencyScope, str], list[float]] = {}
    for step in steps:
        groups.setdefault(("kind", step.kind), []).append(step.latency_ms)
        groups.setdefault((step.kind, step.name), []).append(step.latency_ms)
    order = {"kind": 0, "model": 1, "tool": 2}
    keys = sorted(groups, key=lambda key: (order[key[0]], key[1]))
    return [
        LatencyRow(scope=scope, name=name, latency_ms=summarize(groups[(scope, name)]))
        for scope, name in keys
    ]


def _token_row(model: str, steps: Sequence[StepRecord]) -> TokenRow:
    usages = [s.usage for s in steps if s.usage is not None]
    return TokenRow(
        model=model,
        steps=len(usages),
        input_tokens=sum(u.input_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
        cached_tokens=sum(u.cached_tokens for u in usages),
        total_tokens=sum(u.total_tokens for u in usages),
        per_step=summarize([float(u.total_tokens) for u in usages]),
    )


def token_rows(steps: Sequence[StepRecord]) -> list[TokenRow]:
    """All model steps that report usage (``model="*"``), then each model's."""
    with_usage = [s for s in steps if s.kind == "model" and s.usage is not None]
    if not with_usage:
        return []
    by_model: dict[str, list[StepRecord]] = {}
    for step in with_usage:
        by_model.setdefault(step.name, []).append(step)
    return [_token_row("*", with_usage)] + [_token_row(m, by_model[m]) for m in sorted(by_model)]


def tool_rows(runs: Iterable[RunRecord]) -> list[ToolRow]:
    counts: dict[str, Counter[str]] = {}
    servers: dict[str, str] = {}
    for run in runs:
        for step in run.result.steps if run.result else []:
            if step.kind != "tool":
                continue
            counts.setdefault(step.name, Counter())[step.outcome] += 1
            if step.server and step.name not in servers:
                servers[step.name] = step.server
    rows = []
    for tool in sorted(counts):
        outcomes: dict[str, int] = {outcome: counts[tool][outcome] for outcome in TOOL_OUTCOMES}
        executed = sum(outcomes[o] for o in EXECUTED)
        rows.append(
            ToolRow(
                tool=tool,
                server=servers.get(tool),
                calls=sum(outcomes.values()),
                outcomes=outcomes,
                executed=executed,
                succeeded=outcomes["ok"],
                success_rate=_ratio(outcomes["ok"], executed),
            )
        )
    return rows


def retry_rows(steps: Sequence[StepRecord]) -> list[RetryRow]:
    rows = []
    scopes: tuple[RetryScope, ...] = ("all", "model", "tool")
    for scope in scopes:
        chosen = [s for s in steps if scope == "all" or s.kind == scope]
        retried = sum(1 for s in chosen if s.attempts > 1)
        extra = sum(max(0, s.attempts - 1) for s in chosen)
        rows.append(
            RetryRow(
                scope=scope,
                steps=len(chosen),
                retried_steps=retried,
                retry_rate=_ratio(retried, len(chosen)),
                extra_attempts=extra,
                extra_attempts_per_step=_ratio(extra, len(chosen)),
            )
        )
    return rows


def cost_figures(runs: Sequence[RunRecord]) -> CostFigures:
    """Spend of all runs (halted and failed ones too) over the runs that completed."""
    # fsum: correctly rounded whatever order visibility lists the runs in.
    total = math.fsum(run.result.cost_usd for run in runs if run.result is not None)
    completed = sum(1 for run in runs if run.end == "completed")
    return CostFigures(
        total_usd=total,
        runs=len(runs),
        completed=completed,
        per_completion_usd=_ratio(total, completed),
    )


def histogram(values: Sequence[int]) -> list[HistogramBin]:
    """One bin per value; gaps between the smallest and largest value are shown as empty bins
    unless that would make more than ``MAX_FILLED_BINS`` bins."""
    if not values:
        return []
    counts = Counter(values)
    low, high = min(values), max(values)
    keys = range(low, high + 1) if high - low < MAX_FILLED_BINS else sorted(counts)
    return [HistogramBin(value=v, runs=counts.get(v, 0)) for v in keys]


def step_counts(runs: Sequence[RunRecord]) -> StepCounts:
    values = [run.result.model_calls for run in runs if run.result is not None]
    return StepCounts(
        runs=len(values),
        distribution=distribution([float(v) for v in values]),
        histogram=histogram(values),
    )


def interventions(runs: Sequence[RunRecord]) -> Interventions:
    """A run counts as intervened when a human decision was accepted or guidance was used.

    Timeouts (no human acted) and refused decisions (a human tried but was not allowed, or
    was too late: nothing changed) are counted by kind but do not make a run intervened.
    """
    decisions: Counter[str] = Counter()
    waits: list[float] = []
    intervened = guided = 0
    for run in runs:
        if run.result is None:
            continue
        human = [d for d in run.result.approvals if d.decision in HUMAN_DECISIONS]
        decisions.update(d.decision for d in run.result.approvals)
        waits.extend(
            (d.at - d.requested_at).total_seconds() for d in human if d.requested_at is not None
        )
        guided += run.result.guidance > 0
        intervened += bool(human) or run.result.guidance > 0
    return Interventions(
        runs=len(runs),
        intervened_runs=intervened,
        rate=_ratio(intervened, len(runs)),
        guided_runs=guided,
        decisions=dict(sorted(decisions.items())),
        human_decisions=sum(decisions[k] for k in HUMAN_DECISIONS),
        time_to_decision_s=distribution(waits),
    )


def failure_rows(runs: Iterable[RunRecord]) -> list[FailureRow]:
    """Runs per failure class, most frequent first (ties by name)."""
    counts = Counter(run.failure_class for run in runs if run.failure_class)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [FailureRow(failure_class=name, runs=n) for name, n in ordered]


def fallback_counts(runs: Iterable[RunRecord]) -> dict[str, int]:
    """Runs that started a fallback workflow, by how it ended (``RunResult.fallback``)."""
    counts = Counter(
        run.result.fallback.status
        for run in runs
        if run.result is not None and run.result.fallback is not None
    )
    return dict(sorted(counts.items()))


def build_report(
    runs: Sequence[RunRecord],
    *,
    since: datetime,
    until: datetime,
    query: str,
    profile: str | None = None,
    truncated: bool = False,
    unreadable: int = 0,
) -> Report:
    """Every figure of the report over ``runs`` (already filtered to the window and profile)."""
    steps = executed_steps(runs)
    return Report(
        since=since,
        until=until,
        profile=profile,
        query=query,
        runs=len(runs),
        truncated=truncated,
        unreadable=unreadable,
        outcomes=dict(sorted(Counter(run.end for run in runs).items())),
        cost=cost_figures(runs),
        latency=latency_rows(steps),
        tokens=token_rows(steps),
        tools=tool_rows(runs),
        retries=retry_rows(steps),
        steps_per_run=step_counts(runs),
        interventions=interventions(runs),
        failures=failure_rows(runs),
        fallbacks=fallback_counts(runs),
        tiers=tier_rows(runs),
        cache=cache_rows(steps),
    )
