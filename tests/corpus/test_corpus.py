"""The adversarial corpus: every case is checked for the three invariants
(tests/corpus/invariants.py) and its own expectations, on one real stack."""

from __future__ import annotations

import re

import pytest

from tests.corpus.case import NEEDS_TOOL_CALL_ID, NEEDS_USAGE
from tests.corpus.cases import BY_CLASS, CASES
from tests.corpus.conftest import CorpusRun
from tests.corpus.invariants import check


@pytest.mark.parametrize("case_name", [case.name for case in CASES])
def test_case(case_name: str, corpus: CorpusRun) -> None:
    outcome = corpus.outcomes[case_name]
    problems = check(outcome)
    assert not problems, f"{case_name} ({outcome.case.klass}):\n  " + "\n  ".join(problems)


def test_every_effect_belongs_to_an_approved_run(corpus: CorpusRun) -> None:
    """No effect without an idempotency key of a corpus run (nothing unaccounted)."""
    assert corpus.unaccounted == []


def test_every_desk_effect_went_through_the_ledger(corpus: CorpusRun) -> None:
    """The desk's tables grew by exactly the effects its ledger holds: none bypassed it."""
    assert corpus.desk_rows_added == {
        "refunds": corpus.ledger_effects["refund_order"],
        "emails": corpus.ledger_effects["send_email"],
        "ticket_notes": 0,
        "tickets": 0,
    }


def test_the_corpus_is_large_and_well_formed() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) >= 100
    assert all(re.fullmatch(r"[a-z][a-z0-9_]{0,60}", name) for name in names)
    assert len(BY_CLASS) >= 15 and min(BY_CLASS.values()) >= 4
    needs = {need for case in CASES for need in case.needs}
    assert needs <= {NEEDS_TOOL_CALL_ID, NEEDS_USAGE}
