"""``keel eval``: a small dataset of scripted scenarios whose outcomes are known exactly
(tests/evals/small.toml), run as a user runs it — the CLI starting its own isolated stack with
the support desk in per-run sandbox mode — with two trials per task. The report's figures are
checked twice: against the numbers counted by hand from the scenarios, and against figures
recomputed here from the raw RunResults the eval recorded.

Plus the sandbox itself: a real support desk in per-run mode serving two runs and the main
database side by side over MCP.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from keel.eval.models import EvalReport, EvalRun
from keel.eval.report import render_text
from keel.stack import Stack
from tests.auth import connect, server_env
from tests.helpers import REPO, TEST_PROFILES, desk_server, keel

DATASET = REPO / "tests" / "evals" / "small.toml"
K = 2
# task -> (config, passes, failure class of its failing runs): what the scripts make of it.
KNOWN = {
    "quick-answer": ("quick", True, None),
    "quick-wrong-answer": ("quick", False, "check:answer_contains"),
    "loop-halts": ("loop", True, None),
    "loop-should-complete": ("loop", False, "no_progress"),
    "refund-approved": ("approvals", True, None),
    "refund-rejected": ("approvals", True, None),
    "refund-waits": ("approvals", True, None),
}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvalReport, str, Path]:
    out = tmp_path_factory.mktemp("eval")
    env = dict(os.environ)
    env["KEEL_PROFILES_PATH"] = os.pathsep.join([str(TEST_PROFILES), str(REPO / "profiles")])
    done = subprocess.run(
        [sys.executable, "-m", "keel", "eval", str(DATASET), "-k", str(K),
         "--json", str(out / "report.json"), "--html", str(out / "report.html")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=280,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = EvalReport.model_validate_json((out / "report.json").read_text())
    return report, done.stdout, out


def test_every_run_has_its_known_outcome(evaluated: tuple[EvalReport, str, Path]) -> None:
    report, _, _ = evaluated
    assert sorted((r.task, r.trial) for r in report.runs) == sorted(
        (task, trial) for task in KNOWN for trial in range(1, K + 1)
    )
    for run in report.runs:
        config, passes, failure = KNOWN[run.task]
        assert (run.config, run.passed, run.failure) == (config, passes, failure), run.checks
        assert run.workflow_id == f"eval-{report.eval_id}-{config}-{run.task}-{run.trial}"
    by = {(r.task, r.trial): r for r in report.runs}
    for trial in range(1, K + 1):
        refunds = ("refund-approved", "refund-rejected", "refund-waits")
        approved, rejected, waits = (by[(task, trial)] for task in refunds)
        assert approved.result is not None and rejected.result is not None
        assert [a.decision for a in approved.result.approvals] == ["approve"]
        assert [a.decision for a in rejected.result.approvals] == ["reject"]
        assert waits.result is None and waits.status == "awaiting_approval"
        assert waits.tools_called == ["get_order"]
        # Each run refunded in its own sandbox: both approved trials read 20.00, not 40.00,
        # and the rejected and waiting runs read nothing refunded.
        for run in (approved, rejected, waits):
            assert [c.name for c in run.checks if c.name.startswith("state")], run.task
            assert all(c.passed for c in run.checks), run.checks
        loop = by[("loop-should-complete", trial)]
        assert loop.result is not None and loop.result.status == "halted"
        assert [c.reason for c in loop.checks if not c.passed] == [
            "status halted (no_progress), expected completed"
        ]


def recomputed(runs: list[EvalRun]) -> dict[str, Any]:
    """The figures from the raw RunResults (the eval's own counters not used)."""
    passed = [r for r in runs if r.passed]
    tasks: dict[str, list[bool]] = {}
    for r in runs:
        tasks.setdefault(r.task, []).append(r.passed)
    cost = sum(r.result.cost_usd if r.result else r.cost_usd for r in runs)
    human = sum(
        1 for r in runs if r.result and any(a.by == "keel-eval" for a in r.result.approvals)
    )
    return {
        "runs": len(runs),
        "success_rate": len(passed) / len(runs),
        "pass_k": sum(all(t) for t in tasks.values()) / len(tasks),
        "cost_per_success_usd": cost / len(passed) if passed else None,
        "intervention_rate": human / len(runs),
        "failure_classes": dict(Counter(r.failure for r in runs if not r.passed)),
    }


def test_the_figures_match_hand_counts_and_the_raw_results(
    evaluated: tuple[EvalReport, str, Path],
) -> None:
    report, _, _ = evaluated
    figures = {f.config: f for f in report.configs}
    assert list(figures) == ["quick", "loop", "approvals"]
    hand = {  # counted from KNOWN: (runs, success rate, pass^2, intervention rate, failures)
        "quick": (4, 2 / 4, 1 / 2, 0.0, {"check:answer_contains": 2}),
        "loop": (4, 2 / 4, 1 / 2, 0.0, {"no_progress": 2}),
        "approvals": (6, 6 / 6, 3 / 3, 4 / 6, {}),  # approve and reject: 2 x 2 decisions
    }
    for name, (runs, success, pass_k, interventions, failures) in hand.items():
        f = figures[name]
        assert (f.runs, f.success_rate, f.pass_k, f.intervention_rate) == (
            runs, success, pass_k, interventions,
        )  # fmt: skip
        assert f.failure_classes == failures
        raw = recomputed([r for r in report.runs if r.config == name])
        assert raw["runs"] == f.runs
        assert raw["success_rate"] == f.success_rate
        assert raw["pass_k"] == f.pass_k
        assert raw["intervention_rate"] == f.intervention_rate
        assert raw["failure_classes"] == f.failure_classes
        assert f.cost_per_success_usd is not None and f.cost_per_success_usd > 0
        assert f.cost_per_success_usd == pytest.approx(raw["cost_per_success_usd"])
        assert f.latency_p50_seconds is not None and f.latency_p95_seconds is not None
        assert 0 < f.latency_p50_seconds <= f.latency_p95_seconds


def test_the_report_is_printed_and_written(evaluated: tuple[EvalReport, str, Path]) -> None:
    report, stdout, out = evaluated
    assert stdout.strip() == render_text(report).strip()
    assert "figure" in stdout and "loop/quick" in stdout and "approvals/quick" in stdout
    assert "pass^2" in stdout
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "approvals/quick" in html
    assert "quick-wrong-answer" in html


async def test_a_sandboxed_desk_serves_each_run_its_own_database(tmp_path: Path) -> None:
    env = {**server_env(), "SUPPORT_DESK_SANDBOX": "per-run"}
    with desk_server(tmp_path, env=env) as url:
        async with connect(url) as desk:

            async def close(run: str | None) -> str:
                meta: Any = {"io.keel/run": run} if run else None
                result = await desk.call_tool(
                    "update_ticket", {"ticket_id": "TCK-5001", "status": "closed"}, meta=meta
                )
                assert not result.is_error, result.content
                assert result.structured_content is not None
                return str(result.structured_content["previous_status"])

            assert await close("run-a") == "open"
            assert await close("run-a") == "closed"  # run a's sandbox keeps its change
            assert await close("run-b") == "open"  # run b's is fresh
            assert await close(None) == "open"  # the main database saw neither
            assert await close(None) == "closed"
            assert await close("run-c") == "open"  # a new sandbox copies the seed, not main
    sandboxes = tmp_path / "desk.db.sandboxes"
    assert len(list(sandboxes.glob("run-*.db"))) == 3


def test_an_eval_on_a_running_stack(stack: Stack, tmp_path: Path) -> None:
    """``--temporal``: the runs go to a stack that is already up (the session's)."""
    out = tmp_path / "report.json"
    done = keel(stack, "eval", str(DATASET), "--tasks", "quick-answer,quick-wrong-answer",
                "--temporal", stack.config.temporal_address, "--json", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = EvalReport.model_validate_json(out.read_text())
    [quick] = report.configs  # the configs no selected task covers are left out
    assert (quick.config, quick.runs, quick.passed, quick.pass_k) == ("quick", 2, 1, 0.5)
    assert "starting an isolated stack" not in done.stderr
