"""An HTTP MCP server as an OAuth 2.1 resource server: its settings and its token verifier.

Every HTTP server started by :mod:`mcp_servers.shared.launcher` verifies a bearer token on
every request to ``/mcp`` (``GET /healthz`` stays open). The MCP SDK does the protocol part:
its ``BearerAuthBackend`` / ``RequireAuthMiddleware`` answer 401 with ``WWW-Authenticate``
for a missing or invalid token, and it serves the protected resource metadata (RFC 9728) at
``/.well-known/oauth-protected-resource/mcp``. Keel supplies the :class:`JwtTokenVerifier`
(JWTs checked against JWK Sets by :class:`~mcp_servers.shared.auth.jwks.KeySet`) and the
per-tool scopes (:mod:`mcp_servers.shared.auth.scopes`). docs/security.md has the whole story.

Settings (flags win over the environment; lists in the environment are comma-separated):

* ``--jwks SRC`` / ``KEEL_AUTH_JWKS``: trusted issuers' keys (files or http(s) URLs).
* ``--issuer ISS`` / ``KEEL_AUTH_ISSUER``: accepted ``iss`` (default ``names.LOCAL_ISSUER``).
* ``--resource-url URL`` / ``KEEL_AUTH_RESOURCE_URL``: this server's resource identifier
  (default ``http://{host}:{port}/mcp``); a token's ``aud`` must name it.
* ``--audience AUD`` / ``KEEL_AUTH_AUDIENCE``: further accepted audiences.
* ``--insecure-no-auth`` / ``KEEL_INSECURE_NO_AUTH=1``: no token checks, with a warning.

Without JWKS and without ``--insecure-no-auth`` an HTTP server refuses to start.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio.to_thread
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl, ValidationError

from keel.contracts.names import CLAIM_ROLES, CLAIM_RUN, LOCAL_ISSUER, TYP_GRANT
from mcp_servers.shared.auth.jwks import KeySet, KeySetError, TokenRejected
from mcp_servers.shared.config import ServerConfigError
from mcp_servers.shared.logs import get_logger

LOGGER = "keel.mcp_server.auth"
INSECURE_WARNING = (
    "--insecure-no-auth: this server checks no access tokens; anyone who can reach it may call"
    " every tool (use it only on a machine nobody else can reach)"
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def add_auth_arguments(parser: argparse.ArgumentParser) -> None:
    """The resource-server options every HTTP server takes."""
    group = parser.add_argument_group("access tokens (HTTP transport)")
    group.add_argument(
        "--jwks",
        action="append",
        default=[],
        metavar="SRC",
        help="JWK Set (file or http(s) URL) of a trusted token issuer; repeatable"
        " (default: $KEEL_AUTH_JWKS, comma-separated)",
    )
    group.add_argument(
        "--issuer",
        action="append",
        default=[],
        metavar="ISS",
        help=f"accepted token issuer; repeatable (default: $KEEL_AUTH_ISSUER or {LOCAL_ISSUER})",
    )
    group.add_argument(
        "--resource-url",
        default=None,
        metavar="URL",
        help="this server's resource URL, the audience tokens must name"
        " (default: $KEEL_AUTH_RESOURCE_URL or http://HOST:PORT/mcp)",
    )
    group.add_argument(
        "--audience",
        action="append",
        default=[],
        metavar="AUD",
        help="another accepted token audience; repeatable (default: $KEEL_AUTH_AUDIENCE)",
    )
    group.add_argument(
        "--insecure-no-auth",
        action="store_true",
        default=None,
        help="check no access tokens (prints a warning; default: $KEEL_INSECURE_NO_AUTH)",
    )


@dataclass(frozen=True)
class ResourceAuth:
    """What a protected server needs: the SDK's settings, the verifier, the metadata inputs."""

    settings: AuthSettings
    verifier: JwtTokenVerifier
    resource_url: str
    issuers: tuple[str, ...]

    def server_arguments(self) -> dict[str, Any]:
        """The keyword arguments ``MCPServer`` takes for this (``auth``, ``token_verifier``)."""
        return {"auth": self.settings, "token_verifier": self.verifier}


def insecure_requested(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> bool:
    """``--insecure-no-auth`` or ``KEEL_INSECURE_NO_AUTH`` (1/true/yes/on; 0/false/no/off)."""
    if args.insecure_no_auth:
        return True
    raw = (os.environ if env is None else env).get("KEEL_INSECURE_NO_AUTH", "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ServerConfigError(f"KEEL_INSECURE_NO_AUTH={raw!r}: expected 1 or 0")


def resource_auth(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ResourceAuth:
    """The resource-server settings of parsed ``args`` (see the module docstring), or a
    :class:`ServerConfigError` in one line: no JWKS, an unreadable JWKS, a bad URL."""
    env = os.environ if env is None else env
    sources = args.jwks or _listed(env, "KEEL_AUTH_JWKS")
    if not sources:
        raise ServerConfigError(
            "no token keys: give --jwks FILE|URL (or KEEL_AUTH_JWKS), or run without access"
            " tokens with --insecure-no-auth (or KEEL_INSECURE_NO_AUTH=1)"
        )
    issuers = accepted_issuers(args, env)
    resource = resource_url(args, env)
    extra = extra_audiences(args, env)
    try:
        keys = KeySet(sources)
    except KeySetError as exc:
        raise ServerConfigError(str(exc)) from None
    try:
        settings = AuthSettings(
            issuer_url=AnyHttpUrl(issuers[0]),
            resource_server_url=AnyHttpUrl(resource),
            # The verifier checks ``aud`` itself (the resource URL or an extra audience).
            validate_token_resource=False,
        )
        for issuer in issuers:
            AnyHttpUrl(issuer)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise ServerConfigError(
            f"not an http(s) URL: {problem.get('input')!r} (--issuer / --resource-url)"
        ) from None
    verifier = JwtTokenVerifier(keys, issuers=issuers, resource_url=resource, audiences=extra)
    return ResourceAuth(settings, verifier, resource, issuers)


def accepted_issuers(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, ...]:
    """``--issuer`` / ``KEEL_AUTH_ISSUER``, default Keel's local issuer."""
    return tuple(args.issuer or _listed(env, "KEEL_AUTH_ISSUER") or [LOCAL_ISSUER])


def resource_url(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """``--resource-url`` / ``KEEL_AUTH_RESOURCE_URL``, default ``http://{host}:{port}/mcp``."""
    host = f"[{args.host}]" if ":" in args.host else args.host
    resource = (
        args.resource_url
        or env.get("KEEL_AUTH_RESOURCE_URL", "").strip()
        or f"http://{host}:{args.port}/mcp"
    )
    return str(resource).rstrip("/")


def extra_audiences(args: argparse.Namespace, env: Mapping[str, str]) -> list[str]:
    """``--audience`` / ``KEEL_AUTH_AUDIENCE``: audiences accepted besides the resource URL."""
    return list(args.audience or _listed(env, "KEEL_AUTH_AUDIENCE"))


def accepted_audiences(args: argparse.Namespace, env: Mapping[str, str]) -> list[str]:
    """The resource URL and the extra audiences, each with and without a trailing slash."""
    return _spellings([resource_url(args, env), *extra_audiences(args, env)])


def _listed(env: Mapping[str, str], variable: str) -> list[str]:
    return [part.strip() for part in env.get(variable, "").split(",") if part.strip()]


def _spellings(audiences: Iterable[str]) -> list[str]:
    """Each audience with and without a trailing slash (the slash is not significant)."""
    found: list[str] = []
    for audience in audiences:
        bare = audience.rstrip("/")
        found += [bare, bare + "/"]
    return list(dict.fromkeys(found))


class JwtTokenVerifier:
    """The SDK's ``TokenVerifier`` for JWT access tokens (RFC 9068, or an issuer's own JWTs).

    A token is accepted when :meth:`KeySet.verify` accepts it: signed by a key of the JWK
    Sets, not an approval grant (``typ`` ``keel-grant+jwt``; other types, ``at+jwt`` or an
    issuer's ``JWT``, are fine), not expired, from an accepted issuer, for this resource (or
    an extra audience). A refused token is logged with its reason (never the token) and the
    SDK answers 401.
    """

    def __init__(
        self,
        keys: KeySet,
        *,
        issuers: Sequence[str],
        resource_url: str,
        audiences: Sequence[str] = (),
    ) -> None:
        self.keys = keys
        self.issuers = tuple(issuers)
        self.resource_url = resource_url.rstrip("/")
        self.audiences = tuple(_spellings([resource_url, *audiences]))

    async def verify_token(self, token: str) -> AccessToken | None:
        # The key set may fetch a JWKS URL (an unknown kid: rotation), so not on the loop.
        check = partial(
            self.keys.verify,
            token,
            typ=None,
            issuers=self.issuers,
            audiences=self.audiences,
            refuse_typ=(TYP_GRANT,),
        )
        try:
            claims = await anyio.to_thread.run_sync(check)
        except TokenRejected as exc:
            get_logger(LOGGER).warning("access token refused", reason=str(exc))
            return None
        return self.access_token(token, claims)

    def access_token(self, token: str, claims: Mapping[str, Any]) -> AccessToken:
        """The SDK's view of verified ``claims``."""
        audience = claims.get("aud")
        listed = audience if isinstance(audience, list) else [audience]
        resource = next((a for a in listed if str(a).rstrip("/") == self.resource_url), None)
        client = claims.get("client_id") or claims.get("azp") or claims.get("sub") or "unknown"
        expires = claims.get("exp")
        return AccessToken(
            token=token,
            client_id=str(client),
            scopes=token_scopes(claims),
            expires_at=int(expires) if isinstance(expires, int | float) else None,
            resource=str(resource or listed[0]),
            subject=str(claims["sub"]) if claims.get("sub") is not None else None,
            claims=dict(claims),
        )


def token_scopes(claims: Mapping[str, Any]) -> list[str]:
    """The scopes a token grants: ``scope`` (space-separated, RFC 9068) and ``scp`` (a list,
    or a space-separated string as Entra writes it)."""
    found: list[str] = []
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found += value.split()
        elif isinstance(value, list):
            found += [str(v) for v in value]
    return list(dict.fromkeys(found))


def principal(token: AccessToken | None) -> dict[str, Any]:
    """Who a call is made by, for log lines: ``sub``, ``act`` (who acts for them),
    ``keel_run``, ``client_id`` and ``roles`` of the access token (empty without one)."""
    if token is None:
        return {}
    claims = token.claims or {}
    fields = {
        "sub": token.subject,
        "act": claims.get("act"),
        CLAIM_RUN: claims.get(CLAIM_RUN),
        "client_id": token.client_id,
        CLAIM_ROLES: claims.get(CLAIM_ROLES),
    }
    return {key: value for key, value in fields.items() if value is not None}


def request_token(request: object) -> AccessToken | None:
    """The access token of a request (a Starlette request, as tool code finds it in
    ``ctx.request_context.request``), or None (stdio, ``--insecure-no-auth``)."""
    scope = getattr(request, "scope", None)
    user = scope.get("user") if isinstance(scope, Mapping) else None
    return user.access_token if isinstance(user, AuthenticatedUser) else None
