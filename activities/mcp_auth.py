"""The worker's access tokens for HTTP MCP servers, and what a refusal becomes.

With a signing key (``Settings.signing_key``, docs/security.md) every HTTP request the worker
sends to an MCP server carries a freshly minted JWT access token (RFC 9068, ``typ``
``at+jwt``, 300 s): ``aud`` = the server's URL, ``sub`` and ``roles`` = the run's principal,
``act`` = ``{"sub": "keel-worker"}`` (RFC 8693: the worker acts for the principal),
``client_id`` = ``keel-worker``, ``keel_run`` = the workflow id read from
``activity.info()`` (never from workflow input), ``scope`` = what the server's protected
resource metadata lists (RFC 9728, fetched once per server per worker) unless the profile
sets ``servers.scopes``. Tokens never enter workflow history: the workflow passes only the
principal (``{"id", "roles"}``, plus ``"scopes"`` when the profile sets them; non-secret) as
temporalio-mcp's ``factory_argument`` (``workflows/tools/mcp_calls.py:identity``), and the
token is minted here, by an ``httpx2.Auth`` on the client the MCP connection uses.

A 401 or 403 from a server is recorded by that ``Auth`` and turned into a non-retryable
``MCPAccessDenied`` (failure class ``access_denied``) naming the server, the status and the
server's ``error_description`` (:func:`refusing_denied`): a retry would be refused the same.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.routes import build_resource_metadata_url
from pydantic import AnyHttpUrl
from temporalio import activity
from temporalio.exceptions import ApplicationError

from keel.contracts.names import CLAIM_ROLES, CLAIM_RUN, TYP_ACCESS_TOKEN
from keel.runtime.config import Settings
from keel.runtime.keys import TokenSigner

T = TypeVar("T")
MCP_ACCESS_DENIED_ERROR_TYPE = "MCPAccessDenied"
WORKER_CLIENT_ID = "keel-worker"
TOKEN_TTL_SECONDS = 300
# The MCP SDK's default timeouts for its HTTP client (a response stream may stay open).
HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Identity:
    """Whom the worker acts for on one server: the run's principal, and the profile's scopes
    for the server (None: the scopes the server advertises)."""

    id: str
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] | None = None

    @classmethod
    def from_argument(cls, argument: Any) -> Identity | None:
        """The identity a workflow passed as ``factory_argument``; None for anything else
        (no argument: a connection shared by runs)."""
        if not isinstance(argument, dict) or not isinstance(argument.get("id"), str):
            return None
        scopes = argument.get("scopes")
        return cls(
            id=argument["id"],
            roles=tuple(str(r) for r in argument.get("roles") or ()),
            scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else None,
        )


def metadata_url(resource_url: str) -> str:
    """The RFC 9728 metadata URL of a resource: ``/.well-known/oauth-protected-resource``
    inserted before its path (``http://h:1/mcp`` → ``http://h:1/.well-known/…/mcp``)."""
    return str(build_resource_metadata_url(AnyHttpUrl(resource_url)))


class ScopeDirectory:
    """The scopes each server advertises (``scopes_supported`` of its protected resource
    metadata), fetched once per server per worker. A server without metadata (404, e.g. one
    run with ``--insecure-no-auth``) advertises none; a failed fetch is tried again next time."""

    def __init__(self) -> None:
        self._scopes: dict[str, tuple[str, ...]] = {}

    async def scopes(self, resource_url: str) -> tuple[str, ...]:
        known = self._scopes.get(resource_url)
        if known is not None:
            return known
        try:
            async with httpx2.AsyncClient(timeout=10.0) as http:
                response = await http.get(metadata_url(resource_url))
        except httpx2.HTTPError:
            return ()
        if response.status_code == 404:
            self._scopes[resource_url] = ()
            return ()
        try:
            listed = response.json().get("scopes_supported") if response.is_success else None
        except ValueError:
            listed = None
        if not isinstance(listed, list):
            return ()
        found = tuple(str(scope) for scope in listed)
        self._scopes[resource_url] = found
        return found


@dataclass(frozen=True)
class Denial:
    """A server's 401/403: the status and its ``WWW-Authenticate`` parameters."""

    status: int
    error: str
    description: str


# The denials seen by the HTTP requests of the activity attempt running (see refusing_denied).
_DENIALS: contextvars.ContextVar[list[Denial] | None] = contextvars.ContextVar(
    "keel_mcp_denials", default=None
)


class WorkerTokenAuth(httpx2.Auth):
    """Puts a fresh access token on every request to one server; records 401/403 answers."""

    def __init__(self, tokens: AccessTokens, resource_url: str, identity: Identity | None) -> None:
        self._tokens = tokens
        self._url = resource_url
        self._identity = identity

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        token = await self._tokens.mint(self._url, self._identity)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code in (401, 403):
            record_denial(response)


def record_denial(response: httpx2.Response) -> None:
    """Note a 401/403 for the running attempt (its ``WWW-Authenticate`` says why)."""
    seen = _DENIALS.get()
    if seen is None:
        return
    params = dict(_PARAM.findall(response.headers.get("www-authenticate", "")))
    seen.append(
        Denial(
            response.status_code,
            params.get("error", "access_denied"),
            " ".join(params.get("error_description", "").split()),
        )
    )


class AccessTokens:
    """Mints the worker's access tokens (see the module docstring)."""

    def __init__(self, signer: TokenSigner, directory: ScopeDirectory | None = None) -> None:
        self.signer = signer
        self.directory = directory or ScopeDirectory()

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessTokens | None:
        """Tokens signed with the worker's key (``KEEL_SIGNING_KEY``); None without one."""
        if settings.signing_key is None:
            return None
        return cls(TokenSigner.from_file(settings.signing_key, settings.auth_issuer))

    async def mint(self, resource_url: str, identity: Identity | None) -> str:
        scopes = identity.scopes if identity and identity.scopes is not None else None
        if scopes is None:
            scopes = await self.directory.scopes(resource_url)
        claims: dict[str, Any] = {"aud": resource_url, "client_id": WORKER_CLIENT_ID}
        if identity is not None:
            claims |= {"sub": identity.id, CLAIM_ROLES: list(identity.roles)}
            claims["act"] = {"sub": WORKER_CLIENT_ID}
        else:  # a connection shared by runs (no principal passed): the worker itself
            claims["sub"] = WORKER_CLIENT_ID
        if activity.in_activity():
            claims[CLAIM_RUN] = activity.info().workflow_id
        if scopes:
            claims["scope"] = " ".join(scopes)
        return self.signer.sign(claims, typ=TYP_ACCESS_TOKEN, ttl_seconds=TOKEN_TTL_SECONDS)

    def client(self, url: str, argument: Any, read_timeout: float) -> Client:
        """An MCP client of ``url`` whose every HTTP request carries a token for the identity
        in ``argument`` (a workflow's ``factory_argument``)."""
        auth = WorkerTokenAuth(self, url, Identity.from_argument(argument))
        return Client(authenticated_transport(url, auth), read_timeout_seconds=read_timeout)


@asynccontextmanager
async def authenticated_transport(url: str, auth: httpx2.Auth) -> AsyncIterator[Any]:
    """Streamable HTTP to ``url`` over an HTTP client with ``auth`` (closed afterwards)."""
    async with (
        httpx2.AsyncClient(auth=auth, timeout=HTTP_TIMEOUT) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


async def refusing_denied(server: str, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, with a failure after a 401/403 from ``server`` raised as a non-retryable
    ``MCPAccessDenied`` instead (the MCP client reports it as a generic error response)."""
    seen: list[Denial] = []
    token = _DENIALS.set(seen)
    try:
        return await call()
    except Exception:
        if not seen:
            raise
        raise access_denied(server, seen[-1]) from None
    finally:
        _DENIALS.reset(token)


def access_denied(server: str, denial: Denial) -> ApplicationError:
    why = f": {denial.description}" if denial.description else ""
    return ApplicationError(
        f"MCP server {server!r} refused the request: HTTP {denial.status} {denial.error}{why}",
        denial.status,
        type=MCP_ACCESS_DENIED_ERROR_TYPE,
        non_retryable=True,
    )
