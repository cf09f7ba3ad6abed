"""Chaos benchmark: the chaos test with more runs, printed as a table.

    .venv/bin/python -m bench.chaos --runs 100

Starts its own stack on free ports (under a temporary directory), starts the runs, disturbs
the stack (worker SIGKILLs, an MCP server crash, a Temporal restart, 10 % failing and 5 %
hanging model calls), approves every request as a human would, and prints what happened:
terminal states, refunds and emails per run (each run refunds an order of its own, so any
number of runs can), duplicate and lost effects (must be zero), worker kills that landed while
a refund or email was in flight (at least one), model requests per turn, and model turns
requested again after Temporal had recorded them as completed (must be zero).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from tests.integration.chaos_driver import ChaosReport, chaos_stack, run_chaos


def table(report: ChaosReport) -> str:
    rows = [
        ("runs", str(report.runs)),
        ("terminal runs", str(report.terminal)),
        *((f"status {status}", str(count)) for status, count in sorted(report.statuses.items())),
        ("approvals sent", str(report.approvals_sent)),
        ("refunds (expected = runs)", str(report.refunds)),
        ("emails (expected = runs)", str(report.emails)),
        ("duplicate effects", str(report.duplicate_effects)),
        ("lost effects", str(report.lost_effects)),
        ("kills during a write", str(report.kills_during_write)),
        ("write calls retried", str(report.retried_write_calls)),
        ("model turns", str(report.model_turns)),
        ("model requests", str(report.model_requests)),
        ("requests per turn", f"{report.model_requests / max(report.model_turns, 1):.2f}"),
        ("turns requested after completion", str(len(report.repeated_after_completion))),
        ("seconds", f"{report.seconds:.1f}"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value:>8}" for name, value in rows]
    lines.append("disturbances:")
    lines.extend(f"  {action}" for action in report.actions)
    return "\n".join(lines)


async def main(runs: int, timeout: float) -> int:
    stack = chaos_stack(Path(tempfile.mkdtemp(prefix="keel-chaos-")))
    stack.up()
    try:
        report = await run_chaos(stack, runs, timeout=timeout)
    finally:
        stack.down()
    print(table(report))
    ok = (
        report.statuses.get("completed") == runs
        and (report.duplicate_effects, report.lost_effects) == (0, 0)
        and report.kills_during_write > 0
        and not report.repeated_after_completion
    )
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    code = asyncio.run(main(args.runs, args.timeout))
    sys.stdout.flush()
    os._exit(code)  # skip interpreter teardown (known Temporal SDK exit crash)
