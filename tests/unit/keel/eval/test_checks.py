"""Judging a run by its task's expectations: each check passes or says why not."""

from __future__ import annotations

from typing import Any

from keel.eval.checks import judge, lookup, run_checks, state_check, state_error
from keel.eval.dataset import Expect, StateCheck
from keel.eval.models import EvalRun


def eval_run(**fields: Any) -> EvalRun:
    base: dict[str, Any] = {
        "config": "agent", "task": "t1", "trial": 1, "workflow_id": "eval-x-agent-t1-1",
        "status": "completed", "final_answer": "Refunded 42.00 USD for ORD-1042.",
        "tools_called": ["get_order", "refund_order"], "approvals_requested": 1,
    }  # fmt: skip
    return EvalRun(**{**base, **fields})


def failed(run: EvalRun, expect: Expect) -> dict[str, str]:
    return {c.name: c.reason for c in run_checks(run, expect) if not c.passed}


def test_every_given_expectation_is_a_check_and_all_pass() -> None:
    expect = Expect(
        status="completed", answer_contains=["ord-1042", "42.00"], answer_not_contains=["500"],
        answer_matches=r"refunded \d+\.\d\d", tools_called=["refund_order"],
        tools_not_called=["send_email"], approvals=1,
    )  # fmt: skip
    checks = run_checks(eval_run(), expect)
    assert len(checks) == 8
    assert all(c.passed and c.reason == "" for c in checks)


def test_failing_checks_say_why() -> None:
    run = eval_run(status="halted", failure_class="step_limit", final_answer=None)
    expect = Expect(
        status="completed", failure_class="no_progress", answer_contains=["ORD-1042"],
        tools_called=["send_email"], tools_not_called=["refund_order"], approvals=0,
    )  # fmt: skip
    assert failed(run, expect) == {
        "status": "status halted (step_limit), expected completed",
        "failure_class": "failure class step_limit, expected no_progress",
        "answer_contains": "answer lacks 'ORD-1042': no answer",
        "tools_called": "send_email was not called (called: get_order, refund_order)",
        "tools_not_called": "refund_order was called",
        "approvals": "1 approval request(s), expected 0",
    }


def test_answer_checks_ignore_case_and_quote_the_answer() -> None:
    run = eval_run(final_answer="We have REFUNDED $500 to you.")
    reasons = failed(run, Expect(answer_not_contains=["refunded $500"], answer_matches="ORD-\\d+"))
    assert reasons["answer_not_contains"].startswith("answer contains 'refunded $500': ")
    assert "We have REFUNDED $500" in reasons["answer_matches"]


ORDER = {
    "order_id": "ORD-1050", "refunded": 20.0, "status": "delivered",
    "refunds": [{"amount": 20.0, "reason": "damaged"}], "items": [{"sku": "PRD-204"}],
}  # fmt: skip


def test_state_paths_and_conditions() -> None:
    assert lookup(ORDER, "refunds.0.reason") == (True, "damaged")
    assert lookup(ORDER, "refunds.3") == (False, "3")
    check = StateCheck(tool="get_order", arguments={"order_id": "ORD-1050"}, path="refunded",
                       equals=20, at_least=20.0, at_most=20.0)  # fmt: skip
    assert state_check(0, check, ORDER).passed
    contains = StateCheck(tool="get_order", path="refunds", contains={"reason": "damaged"})
    assert state_check(1, contains, ORDER).passed
    text = StateCheck(tool="get_order", path="status", contains="DELIVER")
    assert state_check(2, text, ORDER).passed


def test_failing_state_checks_say_where_and_what() -> None:
    check = StateCheck(tool="get_order", arguments={"order_id": "ORD-1050"}, path="refunded",
                       equals=0.0, at_least=30)  # fmt: skip
    outcome = state_check(0, check, ORDER)
    assert (outcome.name, outcome.passed) == ("state[0]", False)
    assert outcome.reason == (
        "get_order(order_id='ORD-1050').refunded is 20.0, expected 0.0;"
        " is 20.0, expected at least 30.0"
    )
    missing = state_check(1, StateCheck(tool="get_order", path="refund", equals=1), ORDER)
    assert missing.reason == "get_order().refund: no 'refund' in the result"
    not_number = state_check(2, StateCheck(tool="get_order", path="status", at_most=1), ORDER)
    assert not not_number.passed
    error = state_error(3, StateCheck(tool="get_order", path="x", equals=1), "tool error: boom")
    assert (error.passed, error.reason) == (
        False,
        "get_order() could not be read: tool error: boom",
    )


def test_judge_classifies_failures() -> None:
    expect = Expect(status="completed", answer_contains=["ORD-9"])
    ok = judge(
        eval_run(final_answer="ORD-9 done"), run_checks(eval_run(final_answer="ORD-9"), expect)
    )
    assert (ok.passed, ok.failure) == (True, None)
    wrong = eval_run()
    judged = judge(wrong, run_checks(wrong, expect))
    assert (judged.passed, judged.failure) == (False, "check:answer_contains")
    halted = eval_run(status="halted", failure_class="no_progress")
    assert judge(halted, run_checks(halted, expect)).failure == "no_progress"
    state = eval_run()
    outcome = state_check(0, StateCheck(tool="get_order", path="refunded", equals=1), ORDER)
    assert judge(state, [outcome]).failure == "check:state"
    timeout = eval_run(status="eval_timeout")
    judged = judge(timeout, [])
    assert (judged.passed, judged.failure) == (False, "eval_timeout")
