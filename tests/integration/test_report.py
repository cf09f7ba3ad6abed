"""``keel report`` over real runs on the session stack.

Six runs with known simulator latencies (300 ms per model turn, 250 ms per tool call) and a
round price, all with one workflow-id prefix so other tests' runs never enter the report:
two completed lookups (each with a tool error), one halted at the step limit, one whose
refund a human rejected, one that failed as a workflow (invalid input) and one terminated
while it waited for a human. The report's figures must equal what the runs' own results say.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from keel.contracts import (
    AgentInput,
    ApprovalRequest,
    Decision,
    LimitOverrides,
    Principal,
    RunResult,
    StepRecord,
)
from keel.procs import free_port
from keel.report.collect import collect, profile_filter, visibility_query
from keel.report.figures import build_report
from keel.report.models import Report
from keel.stack import Stack
from tests.helpers import keel

MODEL_TURN_MS = 300  # latency_ms of every turn of sim/report_lookup and sim/report_refund
TOOL_MS = 250  # SUPPORT_DESK_LATENCY_MS of the session stack
DECISION_DELAY_S = 0.3
QUOTED = "x' OR WorkflowType = 'AgentWorkflow"  # a --profile value that tries to widen the query
PRICE = {"input": 1.0, "output": 2.0, "cached": 0.5}  # USD per million tokens (both profiles)


class ReportRuns:
    """The six runs, their results, and the window and filter that select exactly them."""

    def __init__(self, prefix: str, since: datetime) -> None:
        self.prefix = prefix
        self.since = since
        self.until = since
        self.results: dict[str, RunResult] = {}

    @property
    def extra(self) -> str:
        return f"WorkflowId STARTS_WITH '{self.prefix}'"


async def _start(
    client: Client, runs: ReportRuns, name: str, profile: str, **extra: Any
) -> WorkflowHandle[Any, RunResult]:
    agent_input = AgentInput(
        profile=profile, task="Help the customer.", principal=Principal(id="tester"), **extra
    )
    return await client.start_workflow(
        "AgentWorkflow",
        agent_input,
        id=f"{runs.prefix}{name}",
        task_queue="agents",
        result_type=RunResult,
    )


async def _pending(handle: WorkflowHandle[Any, Any]) -> ApprovalRequest:
    for _ in range(400):
        requests = await handle.query("pending_approvals", result_type=list[ApprovalRequest])
        if requests:
            return requests[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the refund never waited for a decision")


async def _listed(client: Client, query: str, expected: int) -> None:
    """Visibility is eventually consistent: wait until every run is listed."""
    count = -1
    for _ in range(200):
        count = (await client.count_workflows(query)).count
        if count == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"visibility lists {count} runs, expected {expected}")


@pytest_asyncio.fixture(scope="module")
async def report_runs(client: Client) -> ReportRuns:
    runs = ReportRuns(f"report-{uuid.uuid4().hex[:8]}-", datetime.now(UTC) - timedelta(minutes=1))
    lookups = [await _start(client, runs, f"lookup-{i}", "report") for i in (1, 2)]
    halted = await _start(client, runs, "halted", "report", limits=LimitOverrides(max_steps=1))
    invalid = await _start(client, runs, "invalid", "report", limits=LimitOverrides(max_steps=99))
    decided = await _start(client, runs, "decided", "report_approval")
    abandoned = await _start(client, runs, "terminated", "report_approval")

    request = await _pending(decided)
    await asyncio.sleep(DECISION_DELAY_S)
    await decided.signal(
        "decide",
        Decision(
            approval_id=request.approval_id,
            digest=request.digest,
            decision="reject",
            reason="goodwill refunds need a photo first",
            by="alice",
        ),
    )
    await _pending(abandoned)
    await abandoned.terminate("the customer withdrew the request")

    for name, handle in [
        ("lookup-1", lookups[0]),
        ("lookup-2", lookups[1]),
        ("halted", halted),
        ("decided", decided),
    ]:
        runs.results[name] = await handle.result()
    with pytest.raises(WorkflowFailureError):
        await invalid.result()
    with pytest.raises(WorkflowFailureError):
        await abandoned.result()
    runs.until = datetime.now(UTC) + timedelta(minutes=1)
    await _listed(client, visibility_query(runs.since, runs.until, runs.extra), 6)
    return runs


async def _report(client: Client, runs: ReportRuns, profile: str | None = None) -> Report:
    query = visibility_query(runs.since, runs.until, runs.extra)
    collected = await collect(client, query, limit=100, profile=profile)
    return build_report(
        collected.runs, since=runs.since, until=runs.until, query=query, profile=profile
    )


def type7(values: Sequence[float], p: float) -> float:
    """Percentile by linear interpolation between closest ranks, written out independently."""
    data = sorted(values)
    rank = (len(data) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (rank - low) * (data[high] - data[low])


def _steps(runs: ReportRuns) -> list[StepRecord]:
    return [step for result in runs.results.values() for step in result.steps]


# ------------------------------------------------------------------------- the figures


async def test_runs_outcomes_and_failure_classes(client: Client, report_runs: ReportRuns) -> None:
    report = await _report(client, report_runs)
    assert report.runs == 6
    assert report.unreadable == 0 and not report.truncated
    assert report.outcomes == {"completed": 3, "failed": 1, "halted": 1, "terminated": 1}
    assert [(f.failure_class, f.runs) for f in report.failures] == [
        ("invalid_input", 1),
        ("step_limit", 1),
        ("terminated", 1),
    ]


async def test_cost_per_successful_completion(client: Client, report_runs: ReportRuns) -> None:
    report = await _report(client, report_runs)
    results = report_runs.results.values()
    # Each run's cost is its tokens at the profile's price...
    for result in results:
        expected = sum(
            (
                (s.usage.input_tokens - s.usage.cached_tokens) * PRICE["input"]
                + s.usage.cached_tokens * PRICE["cached"]
                + s.usage.output_tokens * PRICE["output"]
            )
            / 1e6
            for s in result.steps
            if s.kind == "model" and s.usage
        )
        assert result.cost_usd == pytest.approx(expected, abs=1e-12)
        assert result.cost_usd > 0
    # ...and the report spreads all runs' spend (the halted run's too) over the completed runs.
    total = math.fsum(result.cost_usd for result in results)
    assert report.cost.total_usd == total
    assert report.cost.completed == 3
    assert report.cost.per_completion_usd == total / 3


async def test_tokens_per_model_step(client: Client, report_runs: ReportRuns) -> None:
    report = await _report(client, report_runs)
    usages = [s.usage for s in _steps(report_runs) if s.kind == "model" and s.usage]
    overall = report.tokens[0]
    assert overall.model == "*"
    assert overall.steps == len(usages) == 7  # 2 + 2 + 1 + 2 model calls
    assert overall.input_tokens == sum(u.input_tokens for u in usages)
    assert overall.output_tokens == sum(u.output_tokens for u in usages)
    assert overall.total_tokens == sum(u.total_tokens for u in usages) > 0
    totals = [u.total_tokens for u in usages]
    assert overall.per_step.p50 == pytest.approx(type7(totals, 50))
    assert overall.per_step.p95 == pytest.approx(type7(totals, 95))
    assert {row.model for row in report.tokens[1:]} == {"sim/report_lookup", "sim/report_refund"}


async def test_tool_success_rates(client: Client, report_runs: ReportRuns) -> None:
    report = await _report(client, report_runs)
    tools = {row.tool: row for row in report.tools}
    get_order = tools["get_order"]  # ORD-1042 ok, ORD-9999 a tool error, in 3 runs
    assert (get_order.calls, get_order.succeeded, get_order.outcomes["tool_error"]) == (6, 3, 3)
    assert get_order.success_rate == 0.5
    assert get_order.server == "support_desk"
    refund = tools["refund_order"]  # the human rejected it: it never reached the server
    assert (refund.calls, refund.outcomes["rejected"], refund.executed) == (1, 1, 0)
    assert refund.success_rate is None


async def test_step_counts_and_human_intervention(client: Client, report_runs: ReportRuns) -> None:
    report = await _report(client, report_runs)
    counts = report.steps_per_run
    assert counts.runs == 4
    assert [(b.value, b.runs) for b in counts.histogram] == [(1, 1), (2, 3)]
    assert counts.distribution is not None and counts.distribution.p50 == 2

    i = report.interventions
    assert (i.runs, i.intervened_runs, i.human_decisions) == (6, 1, 1)
    assert i.rate == 1 / 6
    assert i.decisions == {"reject": 1}
    [record] = report_runs.results["decided"].approvals
    assert record.requested_at is not None
    waited = (record.at - record.requested_at).total_seconds()
    assert i.time_to_decision_s is not None
    assert i.time_to_decision_s.mean == waited >= DECISION_DELAY_S


async def test_latency_percentiles_and_retries(client: Client, report_runs: ReportRuns) -> None:
    report = await _report(client, report_runs)
    executed = [
        s for s in _steps(report_runs) if s.kind == "model" or s.outcome in ("ok", "tool_error")
    ]
    rows = {(r.scope, r.name): r.latency_ms for r in report.latency}
    for (scope, name), dist in rows.items():
        sample = [s.latency_ms for s in executed if (s.kind if scope == "kind" else s.name) == name]
        assert dist.count == len(sample)
        for p in (50, 95, 99):
            assert getattr(dist, f"p{p}") == pytest.approx(type7(sample, p))
    assert rows["kind", "model"].count == 7
    assert rows["kind", "model"].min >= MODEL_TURN_MS
    assert rows["kind", "tool"].count == 6
    assert rows["tool", "get_order"].min >= TOOL_MS
    retried = sum(1 for s in executed if s.attempts > 1)
    assert report.retries[0].steps == len(executed)
    assert report.retries[0].retried_steps == retried


async def test_profile_filter_reads_the_runs_profile(
    client: Client, report_runs: ReportRuns
) -> None:
    window = visibility_query(report_runs.since, report_runs.until, report_runs.extra)
    # Visibility itself narrows by KeelProfile (upserted at start, also by the invalid run).
    await _listed(client, f"{window} AND {profile_filter('report_approval')}", 2)
    await _listed(client, f"{window} AND {profile_filter('report')}", 4)
    await _listed(client, f"{window} AND {profile_filter('nobody')}", 0)
    await _listed(client, f"{window} AND {profile_filter(QUOTED)}", 0)  # quoted, not injected
    report = await _report(client, report_runs, profile="report_approval")
    assert report.runs == 2  # the decided run and the terminated one (profile from its input)
    assert report.outcomes == {"completed": 1, "terminated": 1}
    assert report.interventions.rate == 0.5


# ------------------------------------------------------------------------- the command line


async def test_cli_json_text_and_html(
    client: Client, stack: Stack, report_runs: ReportRuns, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    window = ["--since", "2h", "--query", report_runs.extra]
    out = keel(stack, "report", *window, "--json", "--html", str(page))
    assert out.returncode == 0, out.stderr
    figures = Report.model_validate_json(out.stdout)
    expected = await _report(client, report_runs)
    assert figures.runs == 6
    assert figures.cost == expected.cost
    assert figures.tools == expected.tools
    assert figures.failures == expected.failures
    assert figures.steps_per_run == expected.steps_per_run
    assert json.loads(out.stdout)["interventions"]["human_decisions"] == 1
    html = page.read_text(encoding="utf-8")
    assert "<svg" in html and "invalid_input" in html

    text = keel(stack, "report", *window, "--profile", "report")
    assert text.returncode == 0, text.stderr
    assert "4 finished runs between" in text.stdout  # lookups, halted, invalid input
    assert "get_order" in text.stdout and "step_limit" in text.stdout


def test_cli_empty_window_says_so(stack: Stack) -> None:
    out = keel(stack, "report", "--since", "1h", "--query", "WorkflowId STARTS_WITH 'no-such-'")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("no finished runs between ")
    assert out.stdout.count("\n") == 1


def test_cli_bad_since_is_one_line_and_exit_2(stack: Stack) -> None:
    out = keel(stack, "report", "--since", "yesterday")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert "--since 'yesterday' is neither a duration" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_bad_query_and_unreachable_temporal_exit_2(stack: Stack) -> None:
    bad = keel(stack, "report", "--query", "NoSuchField = 'x'")
    assert bad.returncode == 2
    assert bad.stderr.startswith("keel: ") and "Traceback" not in bad.stderr
    down = keel(None, "report", temporal=f"127.0.0.1:{free_port()}")
    assert down.returncode == 2
    assert "cannot reach Temporal" in down.stderr
