"""Prices resolved at profile load (activities/profiles.py): every tier and every model of a
tier's own fallback chain gets one, so a budget projects a tier's step at its dearest model."""

from __future__ import annotations

from activities.profiles import resolve_prices
from keel.contracts import Price, Profile
from workflows.agent.model_step import dearest_price

FAST = Price(input_per_mtok=0.15, output_per_mtok=0.60)
BACKUP = Price(input_per_mtok=3.0, output_per_mtok=15.0)


def test_a_tiers_own_fallbacks_are_priced_and_count_in_its_dearest_price() -> None:
    profile = Profile.model_validate({
        "name": "p", "system_prompt": "x",
        "model": {"name": "sim/a", "price": FAST.model_dump()},
        "tiers": {"fast": {
            "name": "sim/a", "price": FAST.model_dump(),
            "fallbacks": [
                {"name": "sim/b", "price": BACKUP.model_dump()},
                {"name": "sim/c", "price_as": "gpt-4o-mini"},  # looked up in genai-prices
            ],
        }},
    })  # fmt: skip
    priced = resolve_prices(profile)
    fast, backup, looked_up = priced.tier_model("fast").chain()
    assert (fast.price, backup.price) == (FAST, BACKUP)
    assert looked_up.price is not None and looked_up.price.input_per_mtok > 0
    dearest = dearest_price(priced.tier_model("fast"))
    assert (dearest.input_per_mtok, dearest.output_per_mtok) == (3.0, 15.0)
