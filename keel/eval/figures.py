"""The figures of an eval, per configuration: pure functions of the judged runs.

Definitions (docs/operations.md, "Evals"):

* success rate — passing runs / runs;
* pass^k — tasks whose every trial passed / tasks (the reliability measure of tool-agent
  benchmarks: a task counts only if the agent gets it right k times out of k);
* cost per successful task — total cost of all runs / passing runs (None when none passed);
* p50 / p95 latency — of the runs' wall times (start to end, or to where the eval stopped
  waiting), interpolated between closest ranks (:func:`keel.report.figures.percentile`);
* intervention rate — runs with at least one human action (an approval decision the eval
  sent, a guidance) / runs;
* handed over — failing runs whose fallback workflow (the profile's ``[fallback]``) completed:
  a person has the case, with what the run collected;
* unhandled rate — runs that neither passed nor were handed over / runs: the failures nobody
  hears of;
* failure classes — failing runs counted by :func:`keel.eval.checks.failure_of`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from keel.eval.models import ConfigFigures, EvalRun
from keel.report.figures import percentile


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def handed_over(run: EvalRun) -> bool:
    """The run's fallback workflow took it over and completed (opened its ticket)."""
    fallback = run.result.fallback if run.result is not None else None
    return fallback is not None and fallback.status == "completed"


def pass_k(runs: Sequence[EvalRun]) -> float | None:
    """Fraction of tasks whose every trial in ``runs`` passed."""
    by_task: dict[str, list[bool]] = defaultdict(list)
    for run in runs:
        by_task[run.task].append(run.passed)
    return _ratio(sum(all(trials) for trials in by_task.values()), len(by_task))


def config_figures(config: str, spec: str, runs: Sequence[EvalRun], k: int) -> ConfigFigures:
    """The figures of one configuration's runs."""
    passed = [run for run in runs if run.passed]
    total_cost = sum(run.cost_usd for run in runs)
    latencies = [run.latency_seconds for run in runs]
    failures = Counter(run.failure for run in runs if run.failure is not None)
    handed = [run for run in runs if not run.passed and handed_over(run)]
    return ConfigFigures(
        config=config,
        spec=spec,
        runs=len(runs),
        passed=len(passed),
        tasks=len({run.task for run in runs}),
        trials=k,
        success_rate=_ratio(len(passed), len(runs)),
        pass_k=pass_k(runs),
        total_cost_usd=total_cost,
        cost_per_success_usd=_ratio(total_cost, len(passed)),
        latency_p50_seconds=percentile(latencies, 50) if latencies else None,
        latency_p95_seconds=percentile(latencies, 95) if latencies else None,
        intervention_rate=_ratio(sum(run.interventions > 0 for run in runs), len(runs)),
        handed_over=len(handed),
        unhandled_rate=_ratio(len(runs) - len(passed) - len(handed), len(runs)),
        failure_classes=dict(sorted(failures.items(), key=lambda item: (-item[1], item[0]))),
    )


def all_figures(specs: dict[str, str], runs: Sequence[EvalRun], k: int) -> list[ConfigFigures]:
    """One :class:`ConfigFigures` per configuration, in the order of ``specs``."""
    return [
        config_figures(name, spec, [run for run in runs if run.config == name], k)
        for name, spec in specs.items()
    ]
