"""Model prices in USD per million tokens, resolved once per run on the worker.

The workflow needs a price to bound a run by cost *before* each model call, and it must see
the same price on every replay. So the price is resolved here, inside the ``keel.profile.load``
activity, and travels in the resolved profile (``model.price``) through history. The workflow
never looks a price up itself.

Prices come from the profile (``[model.price]``) when given, else from genai-prices' bundled
data. genai-prices only touches the network through ``UpdatePrices``, which is opt-in; this
module never imports or starts it, so a lookup is a pure in-memory read of the data shipped
with the package version pinned in the lock file. (If some other library in the worker process
started ``UpdatePrices``, genai-prices would answer from that fetched snapshot instead; Keel
does not.)
"""

from __future__ import annotations

import re
from decimal import Decimal

from genai_prices import Usage, calc_price
from genai_prices.data_snapshot import find_provider_by_id, get_snapshot

from keel.contracts import ModelSettings, Price
from keel.contracts.errors import ProfileError, closest

_MTOK = Decimal(1_000_000)

# Separators of "provider/model" and "provider:model" ids (LiteLLM, OpenRouter, pydantic-ai).
_PREFIX_SEPARATORS = ("/", ":")
# What a provider prefix looks like; keeps "amazon.titan-embed-text-v2:0" from losing its name.
_PREFIX = re.compile(r"^[A-Za-z0-9_-]+$")
# genai-prices resolves this pseudo-provider from the model id's own prefix.
_LITELLM = "litellm"


def resolve_price(model: ModelSettings) -> Price:
    """The model's price: the profile's explicit ``[model.price]``, else genai-prices' data.

    The lookup uses ``model.price_as or model.name`` as the model id and
    ``model.pricing_provider`` (when set) as the genai-prices provider id. An id such as
    ``openai/gpt-4o-mini`` that is unknown as written is retried without its prefix, with the
    prefix as the provider when it names one, so LiteLLM-style ids resolve.

    Prices are the ones genai-prices says apply today, computed by genai-prices itself
    (``calc_price``) for a one-token request and scaled to a million tokens. That keeps all
    of its rules (dated price changes, unit hierarchy, cache reads and cache writes billed at the
    input rate when no cache price is listed) instead of re-implementing them here. Cache writes
    matter for Anthropic, which bills them above the input rate (1.25x for its 5-minute cache).

    Tiered prices (e.g. a higher rate for every token once a prompt passes 200k tokens):
    a one-token request always falls in the *smallest* tier, so the base rate is used. That is
    the rate of the prompts agent runs usually send; a run whose prompts cross a tier threshold
    is under-costed by the tier's surcharge. Profiles that run such prompts should set
    ``[model.price]`` to the higher tier explicitly.

    Raises ``ProfileError`` (a readable message naming the fix) when no price is known.
    """
    if model.price is not None:
        return model.price
    ref = model.price_as or model.name
    provider = model.pricing_provider or None
    if provider is not None and not _known_provider(provider) and provider.lower() != _LITELLM:
        raise ProfileError(_unknown_provider_message(model, provider))
    for candidate_ref, candidate_provider in _candidates(ref, provider):
        price = _lookup(candidate_ref, candidate_provider)
        if price is not None:
            return price
    raise ProfileError(_no_price_message(model))


def _candidates(ref: str, provider: str | None) -> list[tuple[str, str | None]]:
    """Lookups to try, in order: the id as written, then without a ``provider/`` prefix.

    Stripping is only a fallback: some providers (OpenRouter, Together) list models under
    prefixed ids, and the id as written is the most specific match.
    """
    candidates: list[tuple[str, str | None]] = [(ref, provider)]
    for separator in _PREFIX_SEPARATORS:
        prefix, found, rest = ref.partition(separator)
        if not found or not rest or not _PREFIX.match(prefix):
            continue
        if provider is None and _known_provider(prefix):
            candidates.append((rest, prefix))
        candidates.append((rest, provider))
    return list(dict.fromkeys(candidates))


def _known_provider(provider_id: str) -> bool:
    return find_provider_by_id(get_snapshot().providers, provider_id) is not None


def _lookup(ref: str, provider: str | None) -> Price | None:
    """The price genai-prices knows for ``ref``, or None when it lists no token price for it."""
    try:
        base = calc_price(Usage(input_tokens=1, output_tokens=1), ref, provider_id=provider)
        cached = calc_price(Usage(input_tokens=1, cache_read_tokens=1), ref, provider_id=provider)
        written = calc_price(Usage(input_tokens=1, cache_write_tokens=1), ref, provider_id=provider)
    except LookupError:
        return None
    if base.input_price == 0 and base.output_price == 0:
        # Listed without token prices (e.g. subscription-only models): not a price of zero.
        return None
    return Price(
        input_per_mtok=float(base.input_price * _MTOK),
        output_per_mtok=float(base.output_price * _MTOK),
        cached_input_per_mtok=float(cached.input_price * _MTOK),
        cache_write_per_mtok=float(written.input_price * _MTOK),
    )


def _no_price_message(model: ModelSettings) -> str:
    looked_up = ""
    if model.price_as:
        looked_up += f" (priced as {model.price_as!r}"
    if model.pricing_provider:
        looked_up += " (" if not looked_up else ", "
        looked_up += f"provider {model.pricing_provider!r}"
    if looked_up:
        looked_up += ", unknown to genai-prices)"
    return (
        f"model {model.name!r} has no known price{looked_up}; set [model.price]"
        ' input_per_mtok / output_per_mtok in the profile, or price_as = "<known model id>"'
    )


def _unknown_provider_message(model: ModelSettings, provider: str) -> str:
    known = sorted(p.id for p in get_snapshot().providers)
    hint = closest(provider, known)
    return (
        f"model {model.name!r}: pricing_provider {provider!r} is not a genai-prices provider"
        + (f" (did you mean {hint[0]!r}?)" if hint else "")
        + f"; use one of {', '.join(known)}, or set [model.price] input_per_mtok /"
        " output_per_mtok in the profile"
    )
