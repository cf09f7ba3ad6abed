"""The ``keel.profile.load`` activity: resolve a profile once, at the start of a run.

Loading in an activity puts the resolved profile into workflow history, so a run keeps the
profile it started with even if the file changes mid-run. The same activity is the run's
pre-flight: a missing API key, an MCP server this worker does not know, or an unreachable
model endpoint ends the run at once with a readable error instead of failing mid-run.
"""

from __future__ import annotations

import os
from collections.abc import Collection

import httpx2
from temporalio import activity
from temporalio.exceptions import ApplicationError

from keel.contracts import ModelSettings, Profile, TierModel, names
from keel.contracts.errors import ProfileError, closest
from keel.runtime.config import Settings
from keel.runtime.pricing import resolve_price
from keel.runtime.profiles import load_profile


class ProfileActivities:
    """Loads profiles from the worker's search path and checks them against its config."""

    def __init__(self, settings: Settings, http: httpx2.AsyncClient) -> None:
        self._settings = settings
        self._http = http

    @activity.defn(name=names.ACTIVITY_PROFILE_LOAD)
    async def load(self, name: str) -> Profile:
        try:
            profile = load_profile(name, self._settings.profiles_path)
        except ProfileError as exc:
            raise ApplicationError(str(exc), type="ProfileError", non_retryable=True) from None
        profile = resolve_defaults(profile, self._settings)
        profile = resolve_identity(profile, self._settings)
        # The worker's data converter stores large payloads (worker.py: external_storage).
        profile = profile.model_copy(update={"payload_store": bool(self._settings.store)})
        try:
            profile = resolve_prices(profile)
        except ProfileError as exc:
            raise ApplicationError(str(exc), type="ProfileError", non_retryable=True) from None
        check_servers(profile, self._settings.mcp_servers.keys())
        check_api_key(profile)
        await self._probe([m.base_url for m in profile.model.chain()])
        return profile

    async def _probe(self, base_urls: list[str]) -> None:
        """At least one endpoint of the model chain must answer (any HTTP status proves it is
        reachable; only transport errors count) — a fallback exists to cover the others."""
        problems = []
        for base_url in dict.fromkeys(base_urls):
            try:
                await self._http.get(f"{base_url}/models", timeout=5.0)
                return
            except httpx2.TransportError as exc:
                problems.append(f"{base_url} ({type(exc).__name__}: {exc})")
        raise ApplicationError(
            f"model endpoint unreachable: {'; '.join(problems)};"
            " start it (make up) or set KEEL_LLM_BASE_URL / the profile's model.base_url",
            type="UpstreamUnavailable",
        )


def resolve_defaults(profile: Profile, settings: Settings) -> Profile:
    """Fill the model endpoint and key variable from the worker's environment when unset;
    a fallback model without its own endpoint uses the primary's."""
    base_url = (profile.model.base_url or settings.llm_base_url).rstrip("/")
    api_key_env = profile.model.api_key_env or settings.llm_api_key_env
    fallbacks = [
        fb.model_copy(
            update={
                "base_url": (fb.base_url or base_url).rstrip("/"),
                "api_key_env": fb.api_key_env or api_key_env,
            }
        )
        for fb in profile.model.fallbacks
    ]
    model = profile.model.model_copy(
        update={"base_url": base_url, "api_key_env": api_key_env, "fallbacks": fallbacks}
    )
    return profile.model_copy(update={"model": model})


def resolve_identity(profile: Profile, settings: Settings) -> Profile:
    """Which servers get access tokens naming the run's principal (``identity``): the HTTP
    ones, when this worker has a signing key. The workflow passes the principal to their
    MCP activities (temporalio-mcp's ``factory_argument``, activities/mcp_auth.py) and to no
    other: a stdio server given one would be started again for every call."""
    servers = [
        server.model_copy(update={"identity": _gets_tokens(server.name, settings)})
        for server in profile.servers
    ]
    return profile.model_copy(update={"servers": servers})


def _gets_tokens(server: str, settings: Settings) -> bool:
    target = settings.mcp_servers.get(server)
    return settings.signing_key is not None and target is not None and target.url is not None


def resolve_prices(profile: Profile) -> Profile:
    """The price of the model, of every fallback and of every tier, into the profile (and so
    into history)."""
    model = profile.model
    fallbacks = [
        fb.model_copy(update={"price": resolve_price(model.served_by(fb))})
        for fb in model.fallbacks
    ]
    price = resolve_price(model)
    tiers = {name: _priced_tier(model, tier) for name, tier in profile.tiers.items()}
    return profile.model_copy(
        update={
            "model": model.model_copy(update={"price": price, "fallbacks": fallbacks}),
            "tiers": tiers,
        }
    )


def _priced_tier(model: ModelSettings, tier: TierModel) -> TierModel:
    """A tier with its price and its own fallbacks' prices (a budget projects a tier's step
    at the dearest of its chain, so an unpriced fallback would make it look free)."""
    settings = model.tier(tier)
    fallbacks = [
        fb.model_copy(update={"price": resolve_price(settings.served_by(fb))})
        for fb in tier.fallbacks
    ]
    price = resolve_price(model.served_by(tier))
    return tier.model_copy(update={"price": price, "fallbacks": fallbacks})


def check_servers(profile: Profile, known: Collection[str]) -> None:
    for server in profile.servers:
        if server.name not in known:
            hint = closest(server.name, known)
            raise ApplicationError(
                f"profile {profile.name!r} uses MCP server {server.name!r}, which this worker"
                f" does not know (known: {', '.join(sorted(known)) or 'none'})"
                + (f"; did you mean {hint[0]!r}?" if hint else "")
                + f". Configure it with KEEL_MCP_{server.name.upper()}=<url>.",
                type="ConfigError",
                non_retryable=True,
            )


def check_api_key(profile: Profile) -> None:
    models = [(profile.model.name, profile.model.api_key_env)] + [
        (fb.name, fb.api_key_env)
        for fb in [
            *profile.model.fallbacks,
            *profile.tiers.values(),
            *(fb for tier in profile.tiers.values() for fb in tier.fallbacks),
        ]
    ]
    for name, env in models:
        if env and not os.environ.get(env):
            raise ApplicationError(
                f"profile {profile.name!r}: environment variable {env} (API key for model"
                f" {name!r}) is not set on the worker",
                type="ConfigError",
                non_retryable=True,
            )
