"""What Keel prints for people never passes a terminal escape sequence through.

A model proposes arguments, a tool answers, a user gives a reason: any of it may hold ESC
sequences (clear the screen, retitle the window, recolour, hide text), other control
characters or bidi overrides. ``terminal_safe`` shows them as escapes; every renderer uses it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keel.contracts import (
    ApprovalRequest,
    Decision,
    DecisionOutcome,
    FallbackRecord,
    Principal,
    ProgressEvent,
    RunResult,
    RunStatus,
    StepRecord,
    Usage,
)
from keel.render import (
    approval_lines,
    decision_line,
    progress_line,
    result_text,
    status_line,
    terminal_safe,
)
from workflows.report.progress_text import call_text

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# Clear screen, set the window title, recolour, C1 CSI, a bell, a bidi override, a CR.
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x1b[31mred\x9b1m\u202eevil\rX"
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\u202e", "\r")


def assert_neutral(text: str) -> None:
    for char in FORBIDDEN:
        assert char not in text, f"{char!r} reached the terminal in {text!r}"
    assert "\\x1b[2J" in text  # shown, not run


def test_terminal_safe_escapes_controls_and_keeps_text() -> None:
    assert terminal_safe("plain ORD-1042 · 42.00 €") == "plain ORD-1042 · 42.00 €"
    assert terminal_safe("a\x1b[31mb") == "a\\x1b[31mb"
    assert terminal_safe("x\u202ey\x00") == "x\\u202ey\\x00"
    assert terminal_safe("one\ntwo\tthree") == "one\\x0atwo\\x09three"
    assert terminal_safe("one\ntwo\tthree\r", multiline=True) == "one\ntwo\tthree\\x0d"


def test_progress_of_a_model_proposed_argument_is_neutralised() -> None:
    message = call_text("get_order", {"order_id": HOSTILE}, None)
    assert "\x1b" in message  # the workflow keeps the data as the model sent it
    line = progress_line(ProgressEvent(kind="tool.started", message=message, at=NOW))
    assert_neutral(line)
    assert "calling get_order(order_id=" in line


def test_status_line_is_neutralised() -> None:
    status = RunStatus(
        state="running", profile="p", step=2, tool_calls=1, usage=Usage(), last_event=HOSTILE
    )
    assert_neutral(status_line(status))


def test_result_text_is_neutralised_but_keeps_its_lines() -> None:
    step = StepRecord(
        step=1, kind="tool", name=f"get_{HOSTILE}", started_at=NOW, outcome="invalid",
        detail=HOSTILE,
    )  # fmt: skip
    result = RunResult(
        status="failed", profile="p", model="m", steps=[step], usage=Usage(), tool_calls=1,
        model_calls=1, error=HOSTILE, final_answer=HOSTILE,
    )  # fmt: skip
    text = result_text(result)
    assert_neutral(text)
    assert text.splitlines()[0] == "status: failed"


def test_approvals_and_decisions_are_neutralised() -> None:
    request = ApprovalRequest(
        approval_id="apr-1-call_0_0", workflow_id="run-1", step=1, tool_call_id="call_0_0",
        tool="refund_order", server="support_desk",
        arguments={"order_id": "ORD-1042", "note": HOSTILE},
        principal=Principal(id="bob", roles=["agent"]), reversibility="irreversible",
        reason=HOSTILE, context={"order": {"order_id": HOSTILE, "status": HOSTILE}},
        created_at=NOW, expires_at=NOW + timedelta(hours=1),
    )  # fmt: skip
    text = approval_lines([request], now=NOW)
    for char in FORBIDDEN:
        assert char not in text
    decision = Decision(approval_id="apr-1-call_0_0", decision="reject", reason=HOSTILE)
    outcome = DecisionOutcome(
        approval_id="apr-1-call_0_0", accepted=True, status="rejected", message=HOSTILE
    )
    assert_neutral(decision_line(decision, "run-1", outcome))


@pytest.mark.parametrize("char", ["\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\x7f"])
def test_every_dangerous_character_is_escaped(char: str) -> None:
    assert char not in terminal_safe(f"a{char}b")
    assert char not in terminal_safe(f"a{char}b", multiline=True)


def test_a_pipelines_decisions_are_listed_with_who_decided_and_how() -> None:
    from keel.contracts import DecisionNodeRecord, RunResult

    result = RunResult(
        status="completed", profile="triage", model="m", final_answer="done",
        decisions=[
            DecisionNodeRecord(node="claim", answer={"category": "damaged"}, confidence=0.92,
                               decided_by="model", model="sim/actor-large", outcome="accepted",
                               escalations=["strong"]),
            DecisionNodeRecord(node="tone", decided_by="human", outcome="declined by al\x1b[2J"),
        ],
    )  # fmt: skip
    text = result_text(result)
    assert (
        '  claim: {"category": "damaged"} by sim/actor-large at 0.92 (accepted) via strong'
    ) in text
    assert "  tone: none by human (declined by al\\x1b[2J)" in text


def test_the_result_and_the_status_name_the_fallback() -> None:
    record = FallbackRecord(workflow="keel.fallback.ticket", workflow_id="wf-1-fallback",
                            status="completed", ticket_id="TCK-5006", detail="opened")  # fmt: skip
    result = RunResult(status="halted", profile="p", model="m", failure_class="step_limit",
                       fallback=record)  # fmt: skip
    line = "fallback: keel.fallback.ticket → ticket TCK-5006 (completed) · wf-1-fallback"
    assert line in result_text(result).splitlines()
    status = RunStatus(state="halted", profile="p", step=3, tool_calls=3, usage=Usage(),
                       last_event="fallback keel.fallback.ticket running",
                       fallback=record.model_copy(update={"status": "running",
                                                          "ticket_id": None}))  # fmt: skip
    assert status_line(status).splitlines()[1] == (
        "  fallback: keel.fallback.ticket (running) · wf-1-fallback"
    )
    failed = record.model_copy(update={"status": "failed", "ticket_id": None,
                                       "detail": "create_ticket: \x1b[2Jdown"})  # fmt: skip
    shown = result_text(result.model_copy(update={"fallback": failed}))
    assert "fallback: keel.fallback.ticket (failed) · wf-1-fallback: create_ticket:" in shown
    assert "\x1b" not in shown
    assert "fallback" not in result_text(result.model_copy(update={"fallback": None}))


def test_a_routed_result_shows_each_steps_tier_and_why_and_the_tiers_totals() -> None:
    def model(
        step: int, tier: str, route: str, cost: float, purpose: str | None = None
    ) -> StepRecord:
        return StepRecord(step=step, kind="model", name=f"sim/{tier}", started_at=NOW,
                          tier=tier, route=route, purpose=purpose, cost_usd=cost)  # fmt: skip

    steps = [
        model(1, "fast", "first step", 0.0001),
        model(2, "strong", "escalated after a tool error at step 1", 0.002),
        model(3, "fast", "de-escalated from strong after 1 clean step at step 2", 0.0002),
        model(4, "strong", "final answer after fast answered at step 3", 0.003, "final answer"),
    ]
    result = RunResult(status="completed", profile="p", model="m", steps=steps, model_calls=4)
    lines = result_text(result).splitlines()
    assert "tiers: fast 2 steps $0.000300 · strong 2 steps $0.005000" in lines
    assert "        tier strong: escalated after a tool error at step 1" in lines
    assert "        tier strong (final answer): final answer after fast answered at step 3" in lines
    assert lines[lines.index("steps:") + 1].startswith("   1 model sim/fast")


def test_an_unrouted_result_has_no_tier_lines() -> None:
    step = StepRecord(step=1, kind="model", name="sim/quick_answer", started_at=NOW)
    text = result_text(RunResult(status="completed", profile="p", model="m", steps=[step]))
    assert "tier" not in text
