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

from activities.pricing import resolve_price
from keel.config import Settings
from keel.errors import ProfileError, closest
from keel.models import Profile
from keel.profiles import load_profile


class ProfileActivities:
    """Loads profiles from the worker's search path and checks them against its config."""

    def __init__(self, settings: Settings, http: httpx2.AsyncClient) -> None:
        self._settings = settings
        self._http = http

    @activity.defn(name="keel.profile.load")
    async def load(self, name: str) -> Profile:
        try:
            profile = load_profile(name, self._settings.profiles_path)
        except ProfileError as exc:
            raise ApplicationError(str(exc), type="ProfileError", non_retryable=True) from None
        profile = resolve_defaults(profile, self._settings)
        try:
            price = resolve_price(profile.model)
        except ProfileError as exc:
            raise ApplicationError(str(exc), type="ProfileError", non_retryable=True) from None
        profile = profile.model_copy(
            update={"model": profile.model.model_copy(update={"price": price})}
        )
        check_servers(profile, self._settings.mcp_servers.keys())
        check_api_key(profile)
        await self._probe(profile.model.base_url)
        return profile

    async def _probe(self, base_url: str) -> None:
        """Any HTTP answer proves the endpoint is reachable; only transport errors count."""
        try:
            await self._http.get(f"{base_url}/models", timeout=5.0)
        except httpx2.TransportError as exc:
            raise ApplicationError(
                f"model endpoint {base_url} is unreachable ({type(exc).__name__}: {exc});"
                " start it (make up) or set KEEL_LLM_BASE_URL / the profile's model.base_url",
                type="UpstreamUnavailable",
            ) from None


def resolve_defaults(profile: Profile, settings: Settings) -> Profile:
    """Fill the model endpoint and key variable from the worker's environment when unset."""
    model = profile.model.model_copy(
        update={
            "base_url": (profile.model.base_url or settings.llm_base_url).rstrip("/"),
            "api_key_env": profile.model.api_key_env or settings.llm_api_key_env,
        }
    )
    return profile.model_copy(update={"model": model})


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
    env = profile.model.api_key_env
    if env and not os.environ.get(env):
        raise ApplicationError(
            f"profile {profile.name!r}: environment variable {env} (API key for model"
            f" {profile.model.name!r}) is not set on the worker",
            type="ConfigError",
            non_retryable=True,
        )
