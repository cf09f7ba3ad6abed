"""What the ledger reads from an MCP request: the idempotency key, the called tool and, for
a tool that requires approval, the grant and the arguments as received.

The decorated tool gets a keyword-only ``Context`` parameter, which MCPServer injects and
leaves out of the input schema, so wrapping a tool does not change what clients see.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from keel.contracts.names import META_GRANT, META_IDEMPOTENCY_KEY

MAX_KEY_LENGTH = 255
CONTEXT_PARAMETER = "keel_ledger_context"  # added to wrapped tools; never in the schema


def with_context_parameter(signature: inspect.Signature, name: str) -> inspect.Signature:
    """``signature`` plus a keyword-only ``name: Context | None = None`` (before ``**kwargs``)."""
    extra = inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Context | None
    )
    params = list(signature.parameters.values())
    at = next(
        (i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params)
    )
    return signature.replace(parameters=[*params[:at], extra, *params[at:]])


def key_and_tool(ctx: Context | None) -> tuple[str | None, str | None]:
    """The idempotency key from the request's ``_meta`` and the tool name the client called."""
    if ctx is None:
        return None, None
    try:
        request = ctx.request_context
    except ValueError:  # called outside a request (e.g. server.call_tool in-process)
        return None, None
    key = (request.meta or {}).get(META_IDEMPOTENCY_KEY)
    if key is None:
        return None, None
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
        raise ToolError(
            f"_meta {META_IDEMPOTENCY_KEY!r} must be a non-empty string of at most"
            f" {MAX_KEY_LENGTH} characters"
        )
    name = (request.params or {}).get("name")
    return key, name if isinstance(name, str) else None


def grant_and_arguments(ctx: Context | None) -> tuple[object, Mapping[str, Any] | None]:
    """The request's ``_meta["io.keel/grant"]`` and its ``arguments`` exactly as received
    (before validation fills in defaults: the digest is of what the client sent)."""
    if ctx is None:
        return None, None
    try:
        request = ctx.request_context
    except ValueError:
        return None, None
    arguments = (request.params or {}).get("arguments")
    grant = (request.meta or {}).get(META_GRANT)
    return grant, arguments if isinstance(arguments, Mapping) else None
