"""Scopes per tool, checked on every ``tools/call`` (the MCP authorization spec's scope
challenge), and the protected resource metadata that lists them.

The SDK checks one list of scopes for *every* request (``AuthSettings.required_scopes``) and
lists exactly those in its metadata; Keel's scopes are per tool (``desk:read`` for lookups,
``desk:refund`` for ``refund_order``, ...), and any valid token may initialize and list. So
the SDK is configured with no required scopes, and :func:`protect_app` adds two small pieces
to the app the SDK built:

* :class:`ToolScopeGate`, inside the SDK's ``RequireAuthMiddleware`` (so a request without a
  valid token already got the SDK's 401): it reads the JSON-RPC body of a POST (buffered by
  the SDK's own ``RequestBodyLimitMiddleware``, then replayed unchanged), and for every
  ``tools/call`` in it (also inside a batch) checks the tool's scope against the token the
  SDK's ``AuthenticationMiddleware`` put in the ASGI scope. A body it cannot parse is refused
  (400, JSON-RPC parse error) rather than passed on unchecked. A missing scope is HTTP 403 with
  ``WWW-Authenticate: Bearer error="insufficient_scope", scope="<needed>",
  resource_metadata="<url>"``; the call never reaches the tool. Every call is logged with its
  principal (``sub``, ``act``, ``keel_run``, ``client_id``, ``roles``).
* The metadata route (the SDK's ``create_protected_resource_routes``) rebuilt with
  ``scopes_supported`` = every tool's scope, and every accepted issuer as an authorization
  server, in place of the SDK's (which would list no scopes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, RequireAuthMiddleware
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, RequestBodyLimitMiddleware
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_servers.shared.auth.resource import LOGGER, ResourceAuth, principal
from mcp_servers.shared.logs import get_logger

METADATA_PREFIX = "/.well-known/oauth-protected-resource"


class ToolScopeGate:
    """ASGI app in front of the SDK's streamable-HTTP app: 403 for a ``tools/call`` whose
    tool's scope the token lacks (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        scopes: Mapping[str, str],
        metadata_url: str,
        max_body: int = DEFAULT_MAX_REQUEST_BODY_SIZE,
    ) -> None:
        self.app = app
        self.scopes = dict(scopes)
        self.metadata_url = metadata_url
        self._buffered = RequestBodyLimitMiddleware(self._check, max_body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        await self._buffered(scope, receive, send)

    async def _check(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        replay = _replay(first, receive)
        user = scope.get("user")
        complete = first.get("type") == "http.request" and not first.get("more_body", False)
        if not isinstance(user, AuthenticatedUser):
            await self.app(scope, replay, send)  # the SDK answers (or refuses) as always
            return
        # A body cut short (the client went away mid-body) is not checked, so not passed on.
        tools = _called_tools(first.get("body", b"")) if complete else None
        if tools is None:
            await _send(send, 400, _PARSE_ERROR, [])
            return
        missing: list[str] = []
        for tool in tools:
            needed = self.scopes.get(tool)
            allowed = needed is None or needed in user.scopes
            log = get_logger(LOGGER)
            (log.info if allowed else log.warning)(
                "tool call" if allowed else "tool call refused: insufficient scope",
                tool=tool,
                scope=needed,
                **principal(user.access_token),
            )
            if not allowed and needed is not None:
                missing.append(needed)
        if missing:
            await self._forbidden(send, " ".join(dict.fromkeys(missing)))
            return
        await self.app(scope, replay, send)

    async def _forbidden(self, send: Send, needed: str) -> None:
        description = f"this call needs the scope {needed}"
        challenge = (
            f'Bearer error="insufficient_scope", scope="{needed}",'
            f' resource_metadata="{self.metadata_url}", error_description="{description}"'
        )
        body = {"error": "insufficient_scope", "error_description": description}
        await _send(send, 403, body, [(b"www-authenticate", challenge.encode())])


_PARSE_ERROR = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}


async def _send(send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]]) -> None:
    """A JSON response (``body``) with ``status`` and extra ``headers``."""
    data = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + headers})
    await send({"type": "http.response.body", "body": data})


def _replay(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that hands out ``first`` again, then the real one's messages."""
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def _called_tools(body: bytes) -> list[str] | None:
    """The tool names of the ``tools/call`` requests in a JSON-RPC body (one or a batch);
    None for a body that is not JSON (refused: what is not read cannot be checked)."""
    try:
        parsed: Any = json.loads(body)
    except (ValueError, RecursionError):
        return None
    messages = parsed if isinstance(parsed, list) else [parsed]
    tools: list[str] = []
    for message in messages:
        if isinstance(message, dict) and message.get("method") == "tools/call":
            params = message.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            tools.append(name if isinstance(name, str) else "")
    return tools


def protect_app(
    app: Starlette,
    auth: ResourceAuth,
    scopes: Mapping[str, str],
    name: str,
    max_body: int = DEFAULT_MAX_REQUEST_BODY_SIZE,
) -> None:
    """Put the scope gate and the scope-listing metadata route into the app the SDK built for
    a server with ``auth`` (its MCP route is wrapped in the SDK's ``RequireAuthMiddleware``);
    ``max_body`` is the app's request body limit."""
    metadata_url = str(build_resource_metadata_url(AnyHttpUrl(auth.resource_url)))
    metadata = create_protected_resource_routes(
        resource_url=AnyHttpUrl(auth.resource_url),
        authorization_servers=[AnyHttpUrl(issuer) for issuer in auth.issuers],
        scopes_supported=sorted(set(scopes.values())),
        resource_name=name,
    )
    routes: list[BaseRoute] = []
    gated = False
    for route in app.router.routes:
        if isinstance(route, Route) and route.path.startswith(METADATA_PREFIX):
            continue  # replaced by ``metadata`` below
        if isinstance(route, Route) and isinstance(route.app, RequireAuthMiddleware):
            route.app.app = ToolScopeGate(route.app.app, scopes, metadata_url, max_body)
            gated = True
        routes.append(route)
    if not gated:
        raise RuntimeError("the MCP SDK built no authenticated /mcp route to put scopes on")
    app.router.routes[:] = [*routes, *metadata]
