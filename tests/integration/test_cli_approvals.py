"""Deciding approvals from the terminal: ``keel approvals / approve / reject / edit``.

Run as a user runs them (a subprocess against the session's real stack). Mistakes a person
makes at the keyboard must cost one readable line and exit 2, before Temporal is contacted
(the ones that need no stack are in tests/unit/keel/test_cli.py).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import uuid
from typing import Any

from keel.stack import Stack, temporal_binary
from tests.helpers import keel


def user_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    return out.stderr.strip()


def test_nothing_pending(stack: Stack) -> None:
    """Runs of earlier tests may still be closing (visibility lags): give them a moment."""
    deadline = time.monotonic() + 30
    while True:
        out = keel(stack, "approvals")
        assert out.returncode == 0, out.stderr
        if out.stdout.strip() == "no approvals pending" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert out.stdout.strip() == "no approvals pending", out.stdout
    as_json = keel(stack, "approvals", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == []


def test_deciding_on_an_unknown_run_is_one_line(stack: Stack) -> None:
    out = keel(stack, "approve", f"no-such-run-{uuid.uuid4().hex[:8]}", "apr-0123456789abcdef0123")
    message = user_error(out)
    assert "no run with id no-such-run-" in message


def refunds_after(stack: Stack, last_id: int) -> list[tuple[str, int]]:
    with sqlite3.connect(stack.config.support_desk_db) as db:
        rows = db.execute(
            "SELECT order_id, amount_cents FROM refunds WHERE id > ? ORDER BY id", (last_id,)
        ).fetchall()
    return [(str(order), int(cents)) for order, cents in rows]


def last_refund_id(stack: Stack) -> int:
    with sqlite3.connect(stack.config.support_desk_db) as db:
        (last,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM refunds").fetchone()
    return int(last)


def wait_for_request(stack: Stack, run_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll ``keel approvals --json`` as a person would refresh it (KeelState lags a little)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = keel(stack, "approvals", "--json")
        assert out.returncode == 0, out.stderr
        mine = [r for r in json.loads(out.stdout) if r["workflow_id"] == run_id]
        if mine:
            assert len(mine) == 1, mine
            return mine[0]
        time.sleep(0.5)
    raise AssertionError(f"no pending approval of {run_id} within {timeout}s")


def terminate(stack: Stack, run_id: str) -> None:
    """Leave no run waiting for a human behind (later tests list what is pending)."""
    subprocess.run(
        [str(temporal_binary()), "workflow", "terminate", "--address",
         stack.config.temporal_address, "--workflow-id", run_id, "--reason", "test cleanup"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_approve_from_cli_end_to_end(stack: Stack) -> None:
    before = last_refund_id(stack)
    run_id = f"cli-approve-{uuid.uuid4().hex[:10]}"
    started = keel(
        stack, "run", "approvals", "James Okafor: my watch strap broke within a week (ORD-1050).",
        "--id", run_id, "--principal", "tester", "--role", "agent", "--no-wait",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == run_id
    finished = False
    try:
        request = wait_for_request(stack, run_id)
        assert request["tool"] == "refund_order"
        assert request["arguments"]["order_id"] == "ORD-1050"
        assert request["arguments"]["amount"] == 20.0
        assert request["reversibility"] == "irreversible"

        table = keel(stack, "approvals")
        assert table.returncode == 0, table.stderr
        assert run_id in table.stdout and request["approval_id"] in table.stdout
        assert "refund_order" in table.stdout and "ORD-1050" in table.stdout
        # The profile does not require identity: said under the table, and in the worker log.
        assert "accept unsigned decisions" in table.stderr
        assert request["identity_required"] is False
        warned = [
            line for text in stack.log_path("worker").read_text().splitlines()
            if text.startswith("{") and (line := json.loads(text)).get("workflow_id") == run_id
            and line.get("event") == "approval.identity_not_required"
        ]  # fmt: skip
        assert len(warned) == 1 and warned[0]["level"] == "warning"

        approved = keel(
            stack, "approve", run_id, request["approval_id"], "--by", "alice",
            "--role", "supervisor",
        )  # fmt: skip
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.startswith(f"approved: {request['approval_id']} in run {run_id}")
        # Without --digest the CLI read the request and said what exactly it decided.
        assert (
            f"deciding {request['approval_id']}: support_desk.refund_order" in approved.stderr
            and f"(digest {request['digest']})" in approved.stderr
        )

        result_out = keel(stack, "result", run_id, "--json")
        assert result_out.returncode == 0, (result_out.stdout, result_out.stderr)
        finished = True
        result = json.loads(result_out.stdout)
        assert result["status"] == "completed"
        [record] = result["approvals"]
        assert (record["decision"], record["by"]) == ("approve", "alice")
        assert refunds_after(stack, before) == [("ORD-1050", 2000)]

        again = keel(stack, "approve", run_id, request["approval_id"], "--role", "supervisor")
        assert again.returncode == 2 and "Traceback" not in again.stderr
    finally:
        if not finished:
            terminate(stack, run_id)


def test_refused_decisions_from_the_cli_leave_the_request_open(stack: Stack) -> None:
    """A wrong digest and an edit the checks refuse each cost one line and exit 2; the
    request stays pending, so the approver decides again (here: rejects, naming the digest)."""
    before = last_refund_id(stack)
    run_id = f"cli-refused-{uuid.uuid4().hex[:10]}"
    started = keel(
        stack, "run", "approvals", "James Okafor: my watch strap broke within a week (ORD-1050).",
        "--id", run_id, "--principal", "tester", "--role", "agent", "--no-wait",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    finished = False
    try:
        request = wait_for_request(stack, run_id)
        approval = request["approval_id"]

        too_much = json.dumps({**request["arguments"], "amount": 5000.0})
        edit = keel(stack, "edit", run_id, approval, "--arguments", too_much,
                    "--by", "bob", "--role", "supervisor")  # fmt: skip
        message = user_error(edit)
        assert message.splitlines()[-1].startswith(f"keel: run {run_id} refused the decision:")
        assert "edit refused" in message and "refundable" in message
        assert wait_for_request(stack, run_id)["approval_id"] == approval  # still open

        assert request["digest"].startswith("sha256:")
        table = keel(stack, "approvals")
        assert f"digest     {request['digest']}" in table.stdout
        wrong = keel(stack, "approve", run_id, approval, "--digest", "sha256:" + "0" * 64,
                     "--role", "supervisor")  # fmt: skip
        message = user_error(wrong)
        assert len(message.splitlines()) == 1 and "does not match" in message

        rejected = keel(stack, "reject", run_id, approval, "--digest", request["digest"],
                        "--reason", "not covered", "--role", "supervisor")  # fmt: skip
        assert rejected.returncode == 0, rejected.stderr
        assert rejected.stdout.startswith(f"rejected: {approval} in run {run_id}: rejected")
        assert "deciding" not in rejected.stderr  # the digest was given: nothing to read

        result_out = keel(stack, "result", run_id, "--json")
        assert result_out.returncode == 0, (result_out.stdout, result_out.stderr)
        finished = True
        records = json.loads(result_out.stdout)["approvals"]
        assert [r["decision"] for r in records] == ["refused", "reject"]
        assert (records[0]["by"], records[0]["arguments"]["amount"]) == ("bob", 5000.0)
        assert refunds_after(stack, before) == []
    finally:
        if not finished:
            terminate(stack, run_id)
