"""The spend guard refuses a model call whose day budget is exhausted (SQLite ledger)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.spend import SPEND_LIMIT, SpendGuard
from keel.contracts import ChatMessage, ChatRequest, ModelSettings, SpendSettings, SpendTag
from keel.runtime.spend import PaidCall, open_spend_store, periods
from workflows.failures import classify


def _request(limit: float) -> ChatRequest:
    tag = SpendTag(run_id="r", profile="p", principal="alice",
                   budgets=SpendSettings(profile_day_usd=limit))  # fmt: skip
    hello = [ChatMessage(role="user", content="hi")]
    return ChatRequest(
        model=ModelSettings(name="m"), messages=hello, conversation_id="r", spend=tag
    )


def test_an_exhausted_day_budget_refuses_the_call(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await open_spend_store(str(tmp_path / "spend.db"))
        guard = SpendGuard(store)
        await guard.check(_request(0.01))  # nothing spent yet
        day, month = periods()
        await store.record(PaidCall("k", "r0", "p", "alice", "m", None, day, month, 0.02, 10))
        with pytest.raises(ApplicationError) as refused:
            await guard.check(_request(0.01))
        assert refused.value.type == SPEND_LIMIT and refused.value.non_retryable
        assert classify(refused.value, "model 'm'")[0] == "spend_limit"
        await guard.check(_request(1.0))  # a larger budget is not exhausted

    asyncio.run(scenario())
