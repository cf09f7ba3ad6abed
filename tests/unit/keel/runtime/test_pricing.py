"""Price resolution: explicit prices win, genai-prices' bundled data otherwise, never the network.

Expected values come from genai-prices itself (``calc_price`` for a million tokens), so the
tests follow the bundled data when the package is upgraded instead of pinning dollar figures.
"""

from __future__ import annotations

import socket
import threading
from decimal import Decimal
from typing import Any

import pytest
from genai_prices import Usage, calc_price
from genai_prices.data_snapshot import get_snapshot
from genai_prices.update_prices import UpdatePrices

from keel.contracts import ModelSettings, Price
from keel.contracts.errors import ProfileError
from keel.runtime.pricing import resolve_price

MTOK = 1_000_000


def expected(ref: str, provider: str | None = None, tokens: int = MTOK) -> Price:
    """What genai-prices charges per million tokens, priced at ``tokens`` tokens each."""
    scale = Decimal(MTOK) / tokens
    plain = calc_price(Usage(input_tokens=tokens, output_tokens=tokens), ref, provider_id=provider)
    cached = calc_price(
        Usage(input_tokens=tokens, cache_read_tokens=tokens), ref, provider_id=provider
    )
    written = calc_price(
        Usage(input_tokens=tokens, cache_write_tokens=tokens), ref, provider_id=provider
    )
    return Price(
        input_per_mtok=float(plain.input_price * scale),
        output_per_mtok=float(plain.output_price * scale),
        cached_input_per_mtok=float(cached.input_price * scale),
        cache_write_per_mtok=float(written.input_price * scale),
    )


def test_explicit_price_wins_without_a_lookup() -> None:
    price = Price(input_per_mtok=1.0, output_per_mtok=2.0)
    model = ModelSettings(name="gpt-4o-mini", pricing_provider="no-such-provider", price=price)
    assert resolve_price(model) is price


@pytest.mark.parametrize("provider", ["openai", ""])
def test_known_model_resolves_to_genai_prices_per_million(provider: str) -> None:
    price = resolve_price(ModelSettings(name="gpt-4o-mini", pricing_provider=provider))
    assert price == expected("gpt-4o-mini", provider or None)
    assert price.input_per_mtok > 0
    assert price.output_per_mtok > price.input_per_mtok
    assert price.cached_input_per_mtok is not None
    assert 0 < price.cached_input_per_mtok < price.input_per_mtok


@pytest.mark.parametrize(
    ("name", "provider"),
    [("openai/gpt-4o-mini", ""), ("openai:gpt-4o-mini", ""), ("openai/gpt-4o-mini", "openai")],
)
def test_provider_prefixed_ids_resolve_like_the_bare_id(name: str, provider: str) -> None:
    price = resolve_price(ModelSettings(name=name, pricing_provider=provider))
    assert price == expected("gpt-4o-mini", "openai")


def test_prefixed_id_listed_by_its_provider_is_used_as_written() -> None:
    price = resolve_price(ModelSettings(name="openai/gpt-4o-mini", pricing_provider="openrouter"))
    assert price == expected("openai/gpt-4o-mini", "openrouter")


def test_price_as_prices_a_simulated_model_like_a_real_one() -> None:
    model = ModelSettings(
        name="sim/support_demo", price_as="gpt-4o-mini", pricing_provider="openai"
    )
    assert resolve_price(model) == expected("gpt-4o-mini", "openai")


@pytest.mark.parametrize("name", ["claude-haiku-4-5", "claude-sonnet-4-5"])
def test_an_anthropic_model_has_cache_read_and_write_prices(name: str) -> None:
    price = resolve_price(
        ModelSettings(name=name, provider="anthropic", pricing_provider="anthropic")
    )
    assert price == expected(name, "anthropic", tokens=1_000)  # below any long-context tier
    # Anthropic's 5-minute cache: reads at a tenth of the input price, writes at 1.25 times it.
    assert price.cached_price == pytest.approx(price.input_per_mtok * 0.1)
    assert price.cache_write_price == pytest.approx(price.input_per_mtok * 1.25)


def test_a_model_without_a_cache_write_price_writes_at_the_input_price() -> None:
    price = resolve_price(ModelSettings(name="gpt-4o-mini", pricing_provider="openai"))
    assert price.cache_write_price == price.input_per_mtok


def test_tiered_model_takes_the_smallest_tier() -> None:
    price = resolve_price(ModelSettings(name="gemini-2.5-pro", pricing_provider="google"))
    assert price == expected("gemini-2.5-pro", "google", tokens=1_000)
    # A million-token prompt crosses the tier threshold and costs more per token.
    assert price.input_per_mtok < expected("gemini-2.5-pro", "google").input_per_mtok


def test_unknown_model_names_the_fix() -> None:
    with pytest.raises(ProfileError) as caught:
        resolve_price(ModelSettings(name="sim/support_demo"))
    assert str(caught.value) == (
        "model 'sim/support_demo' has no known price; set [model.price] input_per_mtok /"
        ' output_per_mtok in the profile, or price_as = "<known model id>"'
    )


def test_unknown_price_as_says_what_was_looked_up() -> None:
    with pytest.raises(ProfileError, match=r"priced as 'no-such-model'.*price_as = "):
        resolve_price(ModelSettings(name="sim/support_demo", price_as="no-such-model"))


def test_unknown_provider_suggests_the_closest() -> None:
    with pytest.raises(ProfileError, match=r"pricing_provider 'opena'.*did you mean 'openai'"):
        resolve_price(ModelSettings(name="gpt-4o-mini", pricing_provider="opena"))


def test_id_with_a_colon_suffix_is_not_mistaken_for_a_provider_prefix() -> None:
    model = ModelSettings(name="amazon.titan-embed-text-v2:0", pricing_provider="aws")
    price = resolve_price(model)
    assert price == expected("amazon.titan-embed-text-v2:0", "aws")
    assert price.output_per_mtok == 0


def test_resolving_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("network access attempted while resolving a price")

    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(socket, "getaddrinfo", forbidden)
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(UpdatePrices, "start", forbidden)
    monkeypatch.setattr(UpdatePrices, "fetch", forbidden)
    get_snapshot()._lookup_cache.clear()  # look up afresh, not from earlier tests' cache

    for model in [
        ModelSettings(name="gpt-4o-mini", pricing_provider="openai"),
        ModelSettings(name="openai/gpt-4o-mini"),
        ModelSettings(name="claude-sonnet-4-5"),
    ]:
        assert resolve_price(model).input_per_mtok > 0
    with pytest.raises(ProfileError):
        resolve_price(ModelSettings(name="sim/support_demo"))

    # Prices came from the bundled data, and no background updater is running.
    assert get_snapshot().from_auto_update is False
    assert not [t for t in threading.enumerate() if t.name.startswith("genai_prices")]
