"""The keel CLI as a user runs it: a subprocess against the real stack."""

from __future__ import annotations

import json

from keel.procs import free_port
from keel.stack import Stack
from tests.helpers import keel


def test_run_status_and_result(stack: Stack) -> None:
    run = keel(stack, "run", "quick", "What is Keel?", "--id", "cli-test-run", "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["status"] == "completed"
    assert result["final_answer"]

    status = keel(stack, "status", "cli-test-run", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "completed"

    again = keel(stack, "result", "cli-test-run")
    assert again.returncode == 0
    assert "status: completed" in again.stdout


def test_unknown_profile_is_one_line_and_exit_2(stack: Stack) -> None:
    out = keel(stack, "run", "nope", "hello")
    assert out.returncode == 2
    assert "unknown profile 'nope'" in out.stderr
    assert "Traceback" not in out.stderr


def test_limit_above_ceiling_is_refused_before_start(stack: Stack) -> None:
    out = keel(stack, "run", "support", "hello", "--max-steps", "99")
    assert out.returncode == 2
    assert "limits.max_steps=99 exceeds the profile's ceiling of 8" in out.stderr
    assert "Traceback" not in out.stderr


def test_unreachable_temporal_is_a_clear_error() -> None:
    out = keel(None, "run", "quick", "hello", temporal=f"127.0.0.1:{free_port()}")
    assert out.returncode == 2
    assert "cannot reach Temporal" in out.stderr
    assert "Traceback" not in out.stderr


def test_failed_run_exits_1(stack: Stack) -> None:
    out = keel(stack, "run", "mcp_down", "hello")
    assert out.returncode == 1
    assert "failure class: upstream_unavailable" in out.stdout
