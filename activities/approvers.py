"""The ``keel.approvers.keys`` activity: the public keys approvers' identity tokens are
verified with (profiles with ``approvals.require_identity``, docs/security.md).

The workflow verifies a decision's identity token itself (workflows/approvals/identity.py),
deterministically, so the keys must be data in history: this activity reads the JWK Sets of
``KEEL_APPROVER_JWKS`` (files or http(s) URLs: the local key of the embedded default, or an
issuer's ``jwks_uri`` — Keycloak, Auth0, Entra) and returns their public keys with the
claims a token must carry (issuers, audience, roles claim), all from the worker's settings.

Only public key members leave the activity: symmetric (``oct``) keys are refused — a shared
secret must never reach history — and private members of an asymmetric key are dropped.
A source that cannot be read or holds no usable key is a ``ConfigError`` naming it (the run
fails at start); an unreachable URL is retried, then ``UpstreamUnavailable``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import jwt
from temporalio import activity
from temporalio.exceptions import ApplicationError

from keel.contracts import ApproverKeys, names
from keel.runtime.config import Settings

FETCH_TIMEOUT_SECONDS = 5.0
# The public members of each key type (RFC 7518 section 6, RFC 8037), plus the JWK's own.
PUBLIC_MEMBERS = {"EC": ("crv", "x", "y"), "RSA": ("n", "e"), "OKP": ("crv", "x")}
COMMON_MEMBERS = ("kty", "kid", "alg", "use")


class ApproverKeyActivities:
    """Reads the approver JWKS sources of the worker's settings."""

    def __init__(self, settings: Settings, http: httpx2.AsyncClient) -> None:
        self._settings = settings
        self._http = http

    @activity.defn(name=names.ACTIVITY_APPROVER_KEYS)
    async def load(self) -> ApproverKeys:
        settings = self._settings
        if not settings.approver_jwks:
            raise _config_error(
                "no approver keys: set KEEL_APPROVER_JWKS on the worker to the JWKS (file or"
                " URL) of the issuer of approvers' identity tokens"
            )
        keys: list[dict[str, Any]] = []
        for source in settings.approver_jwks:
            keys.extend(public_keys(source, await self._read(source)))
        return ApproverKeys(
            keys=keys,
            issuers=list(settings.approver_issuers),
            audience=settings.approver_audience,
            roles_claim=settings.approver_roles_claim,
            sources=list(settings.approver_jwks),
        )

    async def _read(self, source: str) -> bytes:
        if not source.startswith(("http://", "https://")):
            try:
                return Path(source).read_bytes()
            except OSError as exc:
                raise _config_error(f"cannot read JWKS {source}: {exc.strerror}") from None
        try:
            response = await self._http.get(source, timeout=FETCH_TIMEOUT_SECONDS)
        except httpx2.TransportError as exc:
            raise ApplicationError(
                f"JWKS {source} unreachable: {type(exc).__name__}: {exc}",
                type=names.ERROR_UPSTREAM_UNAVAILABLE,
            ) from None
        if response.status_code != 200:
            raise ApplicationError(
                f"JWKS {source} answered HTTP {response.status_code}",
                type=names.ERROR_UPSTREAM_UNAVAILABLE if response.status_code >= 500 else
                names.ERROR_CONFIG,
                non_retryable=response.status_code < 500,
            )  # fmt: skip
        return response.content


def public_keys(source: str, raw: bytes) -> list[dict[str, Any]]:
    """The public members of every signing key of the JWK Set ``raw`` read from ``source``."""
    try:
        data = json.loads(raw)
        entries = data["keys"]
        if not isinstance(entries, list):
            raise TypeError("'keys' is not a list")
    except (ValueError, TypeError, KeyError) as exc:
        raise _config_error(f"{source} is not a JWK Set: {exc}") from None
    keys: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use") == "enc":
            continue
        kty = entry.get("kty")
        if kty not in PUBLIC_MEMBERS:
            raise _config_error(
                f"{source}: key {entry.get('kid')!r} of type {kty!r} cannot verify approvers'"
                " tokens (EC, RSA or OKP public keys only; never a shared secret)"
            )
        members = (*COMMON_MEMBERS, *PUBLIC_MEMBERS[kty])
        public = {name: entry[name] for name in members if name in entry}
        try:
            jwt.PyJWK(public)
        except jwt.PyJWTError as exc:
            raise _config_error(f"{source}: key {entry.get('kid')!r} is unusable: {exc}") from None
        keys.append(public)
    if not keys:
        raise _config_error(f"{source} holds no signing key")
    return keys


def _config_error(message: str) -> ApplicationError:
    return ApplicationError(message, type=names.ERROR_CONFIG, non_retryable=True)
