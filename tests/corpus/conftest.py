"""The corpus session: one stack, every selected case run concurrently, effects counted.

The cases run once, concurrently (``asyncio.gather``, a few dozen at a time), the first
time a corpus test asks for ``corpus``; each ``test_case[...]`` then checks its own outcome.
``KEEL_CORPUS_HOME=DIR`` keeps the stack's files and an ``outcomes.json`` there.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from tests.corpus import effects
from tests.corpus.case import Case
from tests.corpus.cases import CASES
from tests.corpus.harness import (
    CONCURRENT_RUNS,
    Outcome,
    Watcher,
    connect,
    corpus_stack,
    run_case,
)


@dataclass
class CorpusRun:
    outcomes: dict[str, Outcome]
    unaccounted: list[tuple[str, str, str]]  # effects no corpus run can account for
    desk_rows_added: dict[str, int]
    ledger_effects: dict[str, int]


def _owner(by_account: dict[str, Outcome], arguments: str) -> Outcome | None:
    account = json.loads(arguments).get("account_id")
    return by_account.get(account) if isinstance(account, str) else None


def _summary(outcome: Outcome) -> dict[str, object]:
    result = outcome.result
    return {
        "problem": outcome.problem, "start_error": outcome.start_error, "acts": outcome.acts,
        "effects": outcome.effects, "seconds": round(outcome.seconds, 1),
        "result": result.model_dump(mode="json", exclude={"usage"}) if result else None,
    }  # fmt: skip


def _case_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("case_name") if callspec is not None else None


async def _run_all(cases: list[Case], home: Path) -> CorpusRun:
    with corpus_stack(cases, home) as (stack, effects_log, errors):
        client = await connect(stack)
        db = stack.config.support_desk_db
        before = effects.desk_rows(db)
        runnable = [c for c in cases if c.name not in errors]
        watcher = Watcher(client)
        watching = asyncio.ensure_future(watcher.watch())
        try:
            slots = asyncio.Semaphore(CONCURRENT_RUNS)
            done = await asyncio.gather(*(run_case(client, c, watcher, slots) for c in runnable))
        finally:
            watching.cancel()
        outcomes = {o.case.name: o for o in done}
        for case in cases:
            if case.name in errors:
                outcomes[case.name] = Outcome(case, problem=errors[case.name])
        found = effects.desk_effects(db) + effects.hostile_effects(effects_log)
        after = effects.desk_rows(db)
    by_run = {o.workflow_id: o for o in outcomes.values() if o.workflow_id}
    by_account = {a: o for o in outcomes.values() for a in o.case.accounts}
    unaccounted = []
    for run, tool, arguments in found:
        owner = by_run.get(run) or _owner(by_account, arguments)
        if owner is not None:
            owner.effects.append((tool, arguments))
        else:
            unaccounted.append((run, tool, arguments))
    ledger = {t: sum(1 for _, tool, _ in found if tool == t) for t in effects.DESK_WRITES}
    added = {t: after[t] - before[t] for t in after}
    return CorpusRun(outcomes, unaccounted, added, ledger)


@pytest_asyncio.fixture(scope="session")
async def corpus(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[CorpusRun]:
    selected = {_case_of(item) for item in request.session.items}
    cases = [case for case in CASES if case.name in selected]
    home = os.environ.get("KEEL_CORPUS_HOME")
    root = Path(home) if home else tmp_path_factory.mktemp("keel-corpus")
    run = await _run_all(cases, root)
    if home:  # a place the developer chose: leave a summary of every outcome there
        summary = {name: _summary(o) for name, o in run.outcomes.items()}
        summary["(corpus)"] = {
            "unaccounted": run.unaccounted,
            "desk_rows_added": run.desk_rows_added,
            "ledger_effects": run.ledger_effects,
        }
        (root / "outcomes.json").write_text(json.dumps(summary, indent=1, default=str))
    slowest = sorted(run.outcomes.values(), key=lambda o: -o.seconds)[:5]
    print("\ncorpus: slowest cases", ", ".join(f"{o.case.name} {o.seconds:.0f}s" for o in slowest))
    yield run
