"""Cost benchmark: the same support tasks three ways, side by side in one run.

    .venv/bin/python -m bench.cost                 # k = 3 trials per task
    .venv/bin/python -m bench.cost -k 5 --json out.json

Runs ``keel eval evals/support.toml`` (its own isolated stack, the support desk in per-run
sandbox mode, the behavioural simulated model over the Anthropic Messages wire) on the tasks of
the dataset's ``refunds`` configuration, with three configurations:

- ``naive`` — profile cost_naive: one top-tier model for every step (``sim/actor-large``,
  priced as Claude Opus 4.5), the whole conversation every step, no prompt caching;
- ``tiers`` — profile cost_tiers: model routing only — the first step and the final answer on
  the strong tier, tool steps on the fast tier (``sim/actor-small``, priced as Claude Haiku
  4.5), escalating to the strong tier after a refusal, a tool error or a low confidence and
  stepping back down after a clean step; no caching, no trimming;
- ``keel`` — profile cost_keel: the same routing, plus prompt caching (``cache_control``
  breakpoints on the stable prefix) and a context budget (older tool results trimmed to
  stubs, older turns summarized by the fast tier).

Prices are Anthropic's public list prices as genai-prices has them (USD per million tokens):

    tier     model priced as     input   output   cache read   cache write
    strong   claude-opus-4-5      5.00    25.00         0.50          6.25
    fast     claude-haiku-4-5     1.00     5.00         0.10          1.25

Error rates per tier are the behavioural model's (simulator/actor/tiers.toml): the large tier
makes no mistakes; the small one gives wrong arguments 25 % of the time, invents ids 15 %, calls
tools that do not exist 15 %, loops 15 %, answers prematurely 10 % and follows injected
instructions 50 %.

Prints, per configuration: success rate, cost per successful task, tokens per task, cache hit
rate, p95 latency, and each ratio to naive; then the target: cost per successful task at most
0.2 x naive with a success rate at least naive's. Exit status 0 when the target holds.
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
CONFIGS = {
    "naive": "profile:cost_naive",
    "tiers": "profile:cost_tiers",
    "keel": "profile:cost_keel",
}
TASK_CONFIG = "refunds"  # the dataset's configuration whose tasks the three run
TARGET_COST_RATIO = 0.2


def tasks_of(dataset: Path, config: str) -> list[str]:
    """The ids of the dataset's tasks meant for ``config`` (all tasks when none says)."""
    tasks = tomllib.loads(dataset.read_text())["tasks"]
    return [t["id"] for t in tasks if config in t.get("configs", [config])]


def figures(report: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per configuration: the eval's figures plus tokens per task and the cache hit rate."""
    out: dict[str, dict[str, float | None]] = {}
    by_config = {c["config"]: c for c in report["configs"]}
    for name in CONFIGS:
        runs = [r for r in report["runs"] if r["config"] == name]
        usages = [r["result"]["usage"] for r in runs if r.get("result")]
        inputs = sum(u["input_tokens"] for u in usages)
        tokens = sum(u["input_tokens"] + u["output_tokens"] for u in usages)
        cached = sum(u.get("cached_tokens", 0) for u in usages)
        base = by_config[name]
        out[name] = {
            "success_rate": base["success_rate"],
            "cost_per_success_usd": base["cost_per_success_usd"],
            "tokens_per_task": tokens / len(runs) if runs else None,
            "cache_hit_rate": cached / inputs if inputs else None,
            "latency_p95_seconds": base["latency_p95_seconds"],
            "runs": len(runs),
            "passed": base["passed"],
        }
    return out


ROWS = (
    ("success rate", "success_rate", "pct"),
    ("cost per success", "cost_per_success_usd", "usd"),
    ("tokens per task", "tokens_per_task", "int"),
    ("cache hit rate", "cache_hit_rate", "pct"),
    ("latency p95", "latency_p95_seconds", "s"),
)


def shown(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    formats = {"pct": f"{value:.1%}", "usd": f"${value:.5f}", "s": f"{value:.2f}s",
               "int": f"{value:,.0f}"}  # fmt: skip
    return formats[kind]


def table(values: dict[str, dict[str, float | None]]) -> tuple[str, bool]:
    """The comparison (value and ratio to naive per configuration) and whether the target
    holds for the ``keel`` configuration."""
    names = list(CONFIGS)
    head = f"{'':18}" + "".join(f"{n:>12}{n + '/naive':>13}" for n in names)
    lines = [head]
    naive = values["naive"]
    for label, key, kind in ROWS:
        row = f"{label:18}"
        for name in names:
            value, base = values[name][key], naive[key]
            times = f"{value / base:.2f}x" if value is not None and base else "-"
            row += f"{shown(value, kind):>12}{times:>13}"
        lines.append(row)
    lines.append(f"{'runs (passed)':18}" + "".join(
        f"{values[n]['runs']:>7.0f} ({values[n]['passed']:.0f}){'':>13}" for n in names
    ))  # fmt: skip
    keel, success = values["keel"], values["keel"]["success_rate"] or 0.0
    cost, base_cost = keel["cost_per_success_usd"], naive["cost_per_success_usd"]
    ratio = cost / base_cost if cost is not None and base_cost else float("inf")
    ok = ratio <= TARGET_COST_RATIO and success >= (naive["success_rate"] or 0.0)
    lines.append(
        f"target: keel cost per success {ratio:.2f}x naive (<= {TARGET_COST_RATIO}x) with"
        f" success {success:.1%} (>= naive's {naive['success_rate'] or 0.0:.1%}):"
        f" {'met' if ok else 'NOT met'}"
    )
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.cost", description=__doc__.split("\n")[0])
    parser.add_argument("-k", type=int, default=3, help="trials per task (default 3)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the eval's JSON report here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="keel-bench-cost-") as tmp:
        out = args.json or Path(tmp) / "report.json"
        command = [sys.executable, "-m", "keel", "eval", str(DATASET), "-k", str(args.k),
                   "--concurrency", str(args.concurrency), "--quiet", "--json", str(out),
                   "--tasks", ",".join(tasks_of(DATASET, TASK_CONFIG))]  # fmt: skip
        for name, spec in CONFIGS.items():
            command += ["--config", f"{name}={spec}"]
        done = subprocess.run(command, cwd=REPO, check=False)
        if not out.exists():
            print(f"bench.cost: keel eval failed (exit {done.returncode})", file=sys.stderr)
            return 2
        text, ok = table(figures(json.loads(out.read_text())))
    print("\n" + text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
