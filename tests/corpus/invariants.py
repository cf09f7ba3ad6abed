"""What every corpus case must satisfy, and each case's own expectations.

1. **No side effect without validation and approval**: every real effect of the run (desk
   ledger, hostile effects log) matches a call a human approved — or edited — for exactly
   those arguments and that was carried out, never more often than approved.
2. **A typed end**: ``RunResult.status`` is completed, halted or failed; a run that did not
   complete carries a failure class of ``workflows.failures.FailureClass``; a run that cannot
   start fails with one of Keel's typed ``ApplicationError`` types.
3. **No traceback reaches a user**: no ``Traceback``, no raw pydantic dump, no multi-line
   error in the result's error, step details or final answer, and nothing ``keel result``,
   ``keel approvals``, ``keel status`` or ``keel watch`` would print holds a raw ESC.
"""

from __future__ import annotations

from collections import Counter
from typing import get_args

from keel import render
from keel.contracts.names import (
    ERROR_CONFIG,
    ERROR_INVALID_INPUT,
    ERROR_PROFILE,
    ERROR_UPSTREAM_UNAVAILABLE,
)
from tests.corpus.case import RAN, REFUSED
from tests.corpus.effects import approved
from tests.corpus.harness import Outcome
from workflows.failures import FailureClass

FAILURE_CLASSES = set(get_args(FailureClass))
START_ERRORS = {ERROR_INVALID_INPUT, ERROR_PROFILE, ERROR_CONFIG, ERROR_UPSTREAM_UNAVAILABLE}
STATUSES = {"completed", "halted", "failed"}
RAW_DUMPS = ("Traceback", "validation error for", "pydantic_core", 'File "/')


def effects_are_approved(outcome: Outcome) -> list[str]:
    """Invariant 1."""
    effects = Counter(outcome.effects)
    allowed = approved(outcome.result) if outcome.result is not None else Counter()
    problems = [
        f"{count} x {tool} {arguments} happened, {allowed[(tool, arguments)]} approved"
        for (tool, arguments), count in effects.items()
        if count > allowed[(tool, arguments)]
    ]
    return [f"side effect without approval: {p}" for p in problems]


def typed_end(outcome: Outcome) -> list[str]:
    """Invariant 2."""
    if outcome.problem is not None:
        return [outcome.problem]
    if outcome.start_error is not None:
        kind, message = outcome.start_error
        return [] if kind in START_ERRORS else [f"untyped start failure {kind}: {message}"]
    result = outcome.result
    assert result is not None
    problems = []
    if result.status not in STATUSES:
        problems.append(f"status {result.status!r}")
    if result.status != "completed" and result.failure_class not in FAILURE_CLASSES:
        problems.append(f"{result.status} without a known failure class: {result.failure_class}")
    return problems


def _texts(outcome: Outcome) -> list[tuple[str, str, bool]]:
    """(where, text, must be one line) of everything a user reads about the run."""
    texts: list[tuple[str, str, bool]] = []
    if outcome.start_error is not None:
        texts.append(("start error", outcome.start_error[1], False))
    result = outcome.result
    if result is None:
        return texts
    texts.append(("error", result.error or "", True))
    texts.append(("final answer", result.final_answer or "", False))
    for step in result.steps:
        refused = step.outcome not in ("ok",)
        texts.append((f"step {step.step} {step.name} detail", step.detail, refused))
        texts.append((f"step {step.step} {step.name} validation", step.validation or "", True))
    for record in result.approvals:
        texts.append((f"approval {record.approval_id}", record.outcome, True))
    return texts


def no_raw_errors(outcome: Outcome) -> list[str]:
    """Invariant 3."""
    problems = []
    for where, text, one_line in _texts(outcome):
        dumps = [marker for marker in RAW_DUMPS if marker in text]
        if dumps:
            problems.append(f"{where} shows {dumps[0]!r}: {text[:160]!r}")
        if one_line and "\n" in text.strip():
            problems.append(f"{where} is a multi-line error: {text[:160]!r}")
    printed = list(outcome.printed)
    if outcome.result is not None:
        printed.append(("keel result", render.result_text(outcome.result)))
    if outcome.requests:
        printed.append(("keel approvals", render.approval_lines(outcome.requests)))
    problems += [f"{what} prints a raw ESC" for what, text in printed if "\x1b" in text]
    return problems


def expectations(outcome: Outcome) -> list[str]:
    """The case's own expectations (only where they are certain)."""
    expect, result = outcome.case.expect, outcome.result
    if expect.start_error is not None:
        got = outcome.start_error[0] if outcome.start_error else "a started run"
        return [] if got == expect.start_error else [f"expected {expect.start_error}, got {got}"]
    if result is None:
        return []  # a typed start failure (checked by invariant 2)
    problems = []
    if expect.status and result.status not in expect.status:
        problems.append(f"status {result.status} ({result.failure_class}: {result.error}),"
                        f" expected {'/'.join(expect.status)}")  # fmt: skip
    allowed = expect.failure_class
    if isinstance(allowed, str):
        allowed = (allowed,)
    if allowed and result.failure_class not in allowed:
        problems.append(f"failure class {result.failure_class}, expected {'/'.join(allowed)}")
    tool_steps = [s for s in result.steps if s.kind == "tool"]
    reached = {s.name for s in tool_steps if s.outcome in RAN}
    problems += [f"{t} never reached its server" for t in expect.ran if t not in reached]
    problems += [f"{t} reached its server" for t in expect.not_ran if t in reached]
    for tool, wanted in expect.outcome.items():
        got_outcomes = [s.outcome for s in tool_steps if s.name == tool]
        if wanted not in got_outcomes:
            problems.append(f"{tool}: no step with outcome {wanted} (got {got_outcomes})")
    asked = {r.tool for r in outcome.requests} | {r.tool for r in result.approvals}
    problems += [f"{t} never waited for a human" for t in expect.requested if t not in asked]
    if expect.effects is not None and len(outcome.effects) != expect.effects:
        problems.append(f"{len(outcome.effects)} side effects, expected {expect.effects}")
    return problems


def acts_as_expected(outcome: Outcome) -> list[str]:
    problems = []
    for index, act in enumerate(outcome.case.acts):
        if act.refused is None or index >= len(outcome.acts):
            continue
        accepted, said = outcome.acts[index]
        if accepted == act.refused:
            verb = "accepted" if accepted else "refused"
            problems.append(f"decision {index} ({act.kind}) was {verb}: {said}")
    return problems


def check(outcome: Outcome) -> list[str]:
    """Every problem of one case (empty: the case passes)."""
    return [
        *effects_are_approved(outcome),
        *typed_end(outcome),
        *no_raw_errors(outcome),
        *expectations(outcome),
        *acts_as_expected(outcome),
    ]


__all__ = ["REFUSED", "check"]
