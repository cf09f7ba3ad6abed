"""Hybrid benchmark: the support dataset's refund tasks three ways, side by side in one run.

    .venv/bin/python -m bench.hybrid                 # k = 3 trials per task
    .venv/bin/python -m bench.hybrid -k 5 --json out.json

Runs ``keel eval evals/support.toml`` (its own isolated stack, the support desk in per-run
sandbox mode, the behavioural simulated model) on the tasks the refund triage pipeline covers,
with three configurations of the dataset:

- ``refunds``  — the autonomous agent (profile refunds_actor, sim/actor);
- ``hybrid``   — the refund triage pipeline (profile triage: sim/actor-small classifies, the
  policy is code, doubtful decisions go to sim/actor-large and then to a person);
- ``fallback`` — the agent with a deterministic fallback (profile refunds_fallback: a run that
  halts or fails is handed to a person as a ticket).

The pipeline's no-reason task has its own variant (``ambiguous-no-reason-pipeline``: the
decision goes to a person), so each configuration runs the same number of tasks. Prints the
eval's report, then success rate, pass^k, cost per successful task, intervention rate, p95
latency and the unhandled rate of each, with ratios to the agent, and the targets: the hybrid
at >= 99 % success on the tasks it covers, at <= 0.3 x the agent's cost per successful task.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO / "evals" / "support.toml"
CONFIGS = ("refunds", "hybrid", "fallback")
FIGURES = (
    ("success rate", "success_rate", "pct"),
    ("pass^k", "pass_k", "pct"),
    ("cost per success", "cost_per_success_usd", "usd"),
    ("intervention rate", "intervention_rate", "pct"),
    ("latency p95", "latency_p95_seconds", "s"),
    ("unhandled rate", "unhandled_rate", "pct"),
)
TARGET_SUCCESS = 0.99
TARGET_COST_RATIO = 0.3


def covered_tasks(dataset: Path) -> list[str]:
    """The tasks the pipeline covers, and the agent's variant of a task the pipeline has its
    own variant of (same text)."""
    tasks = tomllib.loads(dataset.read_text())["tasks"]
    hybrid = [t for t in tasks if "hybrid" in t.get("configs", CONFIGS)]
    texts = {t["task"] for t in hybrid}
    twins = [
        t for t in tasks
        if t not in hybrid and t["task"] in texts and "refunds" in t.get("configs", CONFIGS)
    ]  # fmt: skip
    return [t["id"] for t in [*hybrid, *twins]]


def shown(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    return {"pct": f"{value:.1%}", "usd": f"${value:.6f}", "s": f"{value:.2f}s"}[kind]


def summary(report: dict[str, Any]) -> tuple[str, bool]:
    """The comparison table and whether the targets hold."""
    figures = {c["config"]: c for c in report["configs"]}
    base = figures["refunds"]
    lines = [f"{'':20}" + "".join(f"{c:>14}" for c in CONFIGS) + f"{'hybrid/agent':>14}"]
    for label, key, kind in FIGURES:
        row = f"{label:20}" + "".join(f"{shown(figures[c][key], kind):>14}" for c in CONFIGS)
        if base[key] and figures["hybrid"][key] is not None:
            row += f"{figures['hybrid'][key] / base[key]:>13.2f}x"
        lines.append(row)
    lines.append(f"{'runs (passed)':20}" + "".join(
        f"{figures[c]['runs']:>9} ({figures[c]['passed']})" for c in CONFIGS
    ))  # fmt: skip
    success = figures["hybrid"]["success_rate"] or 0.0
    ratio = (figures["hybrid"]["cost_per_success_usd"] or 0.0) / (
        base["cost_per_success_usd"] or float("inf")
    )
    ok = success >= TARGET_SUCCESS and ratio <= TARGET_COST_RATIO
    lines.append(
        f"targets: hybrid success {success:.1%} (>= {TARGET_SUCCESS:.0%}): "
        f"{'met' if success >= TARGET_SUCCESS else 'NOT met'}; hybrid cost per success"
        f" {ratio:.2f}x the agent's (<= {TARGET_COST_RATIO}x):"
        f" {'met' if ratio <= TARGET_COST_RATIO else 'NOT met'}"
    )
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.hybrid", description=__doc__.split("\n")[0])
    parser.add_argument("-k", type=int, default=3, help="trials per task (default 3)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the eval's JSON report here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="keel-bench-hybrid-") as tmp:
        out = args.json or Path(tmp) / "report.json"
        command = [sys.executable, "-m", "keel", "eval", str(DATASET), "-k", str(args.k),
                   "--concurrency", str(args.concurrency), "--quiet", "--json", str(out),
                   "--tasks", ",".join(covered_tasks(DATASET))]  # fmt: skip
        for config in CONFIGS:
            command += ["--config", config]
        done = subprocess.run(command, cwd=REPO, check=False)
        if not out.exists():
            print(f"bench.hybrid: keel eval failed (exit {done.returncode})", file=sys.stderr)
            return 2
        text, ok = summary(json.loads(out.read_text()))
    print("\n" + text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
