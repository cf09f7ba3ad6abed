"""The spend ledger's part in ``keel.llm.chat``: refuse a call whose budget is exhausted, record
a paid one, and alert once per budget, period and threshold (keel/runtime/spend).

No activity of its own: the checks run inside the model call's activity, so a run pays no
extra history event for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx2
from temporalio import activity
from temporalio.exceptions import ApplicationError

from keel.contracts import ChatRequest, ChatResponse, Price, SpendSettings, SpendTag, call_cost
from keel.runtime.logs import get_logger
from keel.runtime.spend import PaidCall, SpendStore, periods
from keel.runtime.spend.store import Owner

SPEND_LIMIT = "SpendLimit"  # workflows/failures.py maps it to "spend_limit"
UNPRICED = Price(input_per_mtok=0.0, output_per_mtok=0.0)
log = get_logger("keel.spend")


@dataclass(frozen=True)
class Budget:
    """One budget of a tag: whose (``profile:support``), which period, its limit."""

    owner: Owner
    name: str
    period: str  # a UTC day or month
    limit: float

    @property
    def key(self) -> str:
        return f"{self.owner}:{self.name}:{'day' if len(self.period) == 10 else 'month'}"


def budgets(tag: SpendTag) -> list[Budget]:
    """The budgets a call counts against, today and this month (UTC)."""
    s = tag.budgets or SpendSettings()
    day, month = periods()
    found: list[tuple[Owner, str, str, float | None]] = [
        ("profile", tag.profile, day, s.profile_day_usd),
        ("profile", tag.profile, month, s.profile_month_usd),
        ("principal", tag.principal, day, s.principal_day_usd),
        ("principal", tag.principal, month, s.principal_month_usd),
    ]
    return [Budget(o, n, p, limit) for o, n, p, limit in found if limit is not None]


class SpendGuard:
    """The ledger checks of the LLM activity (built once in worker.py)."""

    def __init__(self, store: SpendStore, http: httpx2.AsyncClient | None = None) -> None:
        self._store = store
        self._http = http

    async def check(self, request: ChatRequest) -> None:
        """Refuse the call (non-retryable ``SpendLimit``) when any budget is exhausted."""
        if request.spend is None:
            return
        for budget in budgets(request.spend):
            spent = await self._store.total(budget.owner, budget.name, budget.period)
            if spent >= budget.limit:
                raise ApplicationError(
                    f"spend budget {budget.key} ({budget.period}) is exhausted:"
                    f" ${spent:.4f} of ${budget.limit:.4f}",
                    type=SPEND_LIMIT,
                    non_retryable=True,
                )

    async def paid(self, request: ChatRequest, response: ChatResponse) -> None:
        """Record the answer's cost once, then alert each threshold newly crossed."""
        tag = request.spend
        if tag is None:
            return
        info = activity.info()
        day, month = periods()
        usage = response.usage
        call = PaidCall(
            key=f"{info.workflow_run_id}/{info.activity_id}/{info.attempt}",
            run_id=tag.run_id, profile=tag.profile, principal=tag.principal,
            model=response.model or request.model.name, tier=request.tier, day=day,
            month=month, usd=call_cost(usage, request.model.price or UNPRICED),
            tokens=usage.input_tokens + usage.output_tokens,
        )  # fmt: skip
        if not await self._store.record(call):
            return
        settings = tag.budgets or SpendSettings()
        for budget in budgets(tag):
            spent = await self._store.total(budget.owner, budget.name, budget.period)
            for threshold in sorted(settings.alerts):
                if spent >= threshold * budget.limit and await self._store.alert_once(
                    budget.key, budget.period, threshold, spent
                ):
                    await self._alert(settings, budget, threshold, spent, tag)

    async def _alert(
        self, settings: SpendSettings, budget: Budget, threshold: float, spent: float, tag: SpendTag
    ) -> None:
        """Log ``spend.alert`` and POST it to the webhook once (best effort, short timeout)."""
        event = {
            "budget": budget.key,
            "period": budget.period,
            "threshold": threshold,
            "spent_usd": round(spent, 6),
            "limit_usd": budget.limit,
            "run_id": tag.run_id,
        }
        log.warning("spend.alert", **event)
        if settings.webhook and self._http is not None:
            try:
                await self._http.post(settings.webhook, json={"event": "spend.alert", **event},
                                      timeout=5.0)  # fmt: skip
            except httpx2.HTTPError as exc:
                log.warning("spend.alert webhook failed", error=str(exc), **event)
