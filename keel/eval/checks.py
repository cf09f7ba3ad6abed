"""Judging one run by its task's ``[tasks.expect]``: each given field is one check, and every
failing check says why.

The checks of the run itself (status, failure class, answer, tools, approvals) are pure
functions of the recorded :class:`~keel.eval.models.EvalRun`; the state checks read a tool
server's final state through a read tool called in the run's sandbox (``_meta["io.keel/run"]``
= the run's workflow id), see :mod:`keel.eval.state`.
"""

from __future__ import annotations

import re
from typing import Any

from keel.eval.dataset import Expect, StateCheck
from keel.eval.models import CheckOutcome, EvalRun

EVAL_FAILURES = ("eval_timeout", "eval_error")


def _check(name: str, ok: bool, reason: str) -> CheckOutcome:
    return CheckOutcome(name=name, passed=ok, reason="" if ok else reason)


def _cut(text: str | None, limit: int = 120) -> str:
    if text is None:
        return "no answer"
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def run_checks(run: EvalRun, expect: Expect) -> list[CheckOutcome]:
    """The checks of the run's own record (everything but ``state``)."""
    checks: list[CheckOutcome] = []
    if expect.status is not None:
        why = f" ({run.failure_class})" if run.failure_class else ""
        checks.append(_check("status", run.status == expect.status,
                             f"status {run.status}{why}, expected {expect.status}"))  # fmt: skip
    if expect.failure_class is not None:
        checks.append(_check("failure_class", run.failure_class == expect.failure_class,
                             f"failure class {run.failure_class}, expected"
                             f" {expect.failure_class}"))  # fmt: skip
    answer = (run.final_answer or "").lower()
    for needle in expect.answer_contains:
        checks.append(_check("answer_contains", needle.lower() in answer,
                             f"answer lacks {needle!r}: {_cut(run.final_answer)}"))  # fmt: skip
    for needle in expect.answer_not_contains:
        checks.append(_check("answer_not_contains", needle.lower() not in answer,
                             f"answer contains {needle!r}: {_cut(run.final_answer)}"))  # fmt: skip
    if expect.answer_matches is not None:
        found = re.search(expect.answer_matches, run.final_answer or "", re.IGNORECASE)
        checks.append(_check("answer_matches", found is not None,
                             f"answer does not match /{expect.answer_matches}/:"
                             f" {_cut(run.final_answer)}"))  # fmt: skip
    called = set(run.tools_called)
    for tool in expect.tools_called:
        checks.append(_check("tools_called", tool in called,
                             f"{tool} was not called (called: {_names(called)})"))  # fmt: skip
    for tool in expect.tools_not_called:
        checks.append(_check("tools_not_called", tool not in called, f"{tool} was called"))
    if expect.approvals is not None:
        checks.append(_check("approvals", run.approvals_requested == expect.approvals,
                             f"{run.approvals_requested} approval request(s), expected"
                             f" {expect.approvals}"))  # fmt: skip
    return checks


def _names(tools: set[str]) -> str:
    return ", ".join(sorted(tools)) or "none"


def lookup(value: Any, path: str) -> tuple[bool, Any]:
    """``value`` at dotted ``path`` (list items by index); (False, what was missing) if absent."""
    current = value
    for part in [p for p in path.split(".") if p]:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, part
    return True, current


def state_check(index: int, check: StateCheck, value: Any) -> CheckOutcome:
    """Judge a state check against the read tool's structured result ``value``."""
    name = f"state[{index}]"
    where = f"{check.tool}({_arguments(check.arguments)}).{check.path}".rstrip(".")
    found, got = lookup(value, check.path)
    if not found:
        return _check(name, False, f"{where}: no {got!r} in the result")
    problems: list[str] = []
    if check.equals is not None and not _equal(got, check.equals):
        problems.append(f"is {got!r}, expected {check.equals!r}")
    if check.contains is not None and not _contains(got, check.contains):
        problems.append(f"is {got!r}, expected it to contain {check.contains!r}")
    if check.at_least is not None and not (_number(got) and got >= check.at_least):
        problems.append(f"is {got!r}, expected at least {check.at_least}")
    if check.at_most is not None and not (_number(got) and got <= check.at_most):
        problems.append(f"is {got!r}, expected at most {check.at_most}")
    return _check(name, not problems, f"{where} {'; '.join(problems)}")


def state_error(index: int, check: StateCheck, error: str) -> CheckOutcome:
    """A state check whose read failed (tool error, server unreachable)."""
    where = f"{check.tool}({_arguments(check.arguments)})"
    return _check(f"state[{index}]", False, f"{where} could not be read: {error}")


def _arguments(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items())


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(got: Any, expected: Any) -> bool:
    if _number(got) and _number(expected):
        return abs(float(got) - float(expected)) < 1e-9
    return bool(got == expected)


def _contains(got: Any, expected: Any) -> bool:
    if isinstance(got, str):
        return str(expected).lower() in got.lower()
    if isinstance(got, list):
        return any(_equal(item, expected) for item in got) or any(
            isinstance(item, dict) and _subset(expected, item) for item in got
        )
    if isinstance(got, dict):
        return _subset(expected, got) if isinstance(expected, dict) else expected in got
    return False


def _subset(expected: Any, got: dict[str, Any]) -> bool:
    return isinstance(expected, dict) and all(
        key in got and _equal(got[key], value) for key, value in expected.items()
    )


def failure_of(run: EvalRun) -> str | None:
    """The class of a failing run: the eval's own failure, else the run's failure class,
    else the first failed check (``check:<name>``); None for a passing run."""
    if run.passed:
        return None
    if run.status in EVAL_FAILURES:
        return run.status
    if run.failure_class:
        return run.failure_class
    failed = next((check for check in run.checks if not check.passed), None)
    return f"check:{failed.name.split('[')[0]}" if failed else run.status


def judge(run: EvalRun, checks: list[CheckOutcome]) -> EvalRun:
    """``run`` with its checks, whether it passed, and its failure class."""
    passed = run.status not in EVAL_FAILURES and all(check.passed for check in checks)
    judged = run.model_copy(update={"checks": checks, "passed": passed})
    return judged.model_copy(update={"failure": failure_of(judged)})
