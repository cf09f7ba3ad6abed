"""Every case of the adversarial corpus, by class (see docs/operations.md)."""

from __future__ import annotations

from collections import Counter

from tests.corpus.case import Case
from tests.corpus.cases_model import model_cases
from tests.corpus.cases_people import people_cases
from tests.corpus.cases_tools import tool_cases

CASES: list[Case] = [*model_cases(), *tool_cases(), *people_cases()]
BY_CLASS: Counter[str] = Counter(case.klass for case in CASES)
