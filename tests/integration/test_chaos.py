"""Chaos, bounded to a few minutes: concurrent approval-needing runs survive worker SIGKILLs,
an MCP server crash, a Temporal restart and a flaky, hanging model — with exactly one refund
and one email per approved call, and no completed model turn requested again. Each run refunds
its own order, and the worker is killed while a refund or email is in flight."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keel.stack import Stack
from tests.integration.chaos_driver import chaos_stack, run_chaos

RUNS = 4


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = chaos_stack(tmp_path_factory.mktemp("chaos"))
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


@pytest.mark.timeout(420)
async def test_runs_survive_chaos_with_exactly_once_effects(own_stack: Stack) -> None:
    report = await run_chaos(own_stack, RUNS)

    assert report.statuses.get("completed") == RUNS, report
    assert report.statuses["unfinished"] == 0
    assert report.approvals_sent == 2 * RUNS  # one refund and one email per run
    assert (report.refunds, report.emails) == (RUNS, RUNS), report  # no duplicate, none missing
    # Every run acted on an order of its own: exactly one refund and one email each.
    assert len(set(report.orders)) == RUNS
    assert set(report.refunds_by_order.values()) == {1}, report.refunds_by_order
    assert set(report.emails_by_order.values()) == {1}, report.emails_by_order
    assert (report.duplicate_effects, report.lost_effects) == (0, 0)
    # A kill landed while a write's claim was in the ledger and not done (counted, not hoped).
    assert report.kills_during_write >= 1, report.actions
    assert report.repeated_after_completion == [], report
    assert report.model_turns == 3 * RUNS
    assert len(report.actions) == 9, report.actions  # every disturbance happened
