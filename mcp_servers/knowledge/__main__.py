"""``python -m mcp_servers.knowledge`` — serve the knowledge base over HTTP or stdio.

Usage::

    python -m mcp_servers.knowledge [--transport http|stdio] [--host 127.0.0.1]
                                    [--port 8202] [--allowed-host HOST:*]

Environment: ``KNOWLEDGE_LATENCY_MS`` — integer >= 0 (default 0), an artificial delay
(``asyncio.sleep``) added to every tool call, so tests can show concurrent calls overlap.

HTTP serves MCP at ``/mcp`` and a health check at ``GET /healthz``; every MCP request needs an
access token with the scope ``kb:read`` (``--jwks`` / ``KEEL_AUTH_JWKS``, docs/security.md)
unless ``--insecure-no-auth`` is given. The articles are the
markdown files bundled in ``articles/``; there is no other state. Bad input prints one error
line and exits with 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mcp.server.mcpserver import MCPServer

from mcp_servers.knowledge.server import (
    SERVER_NAME,
    KnowledgeBase,
    create_server,
    load_articles,
)
from mcp_servers.shared.config import ServerConfigError, latency_ms_from_env
from mcp_servers.shared.launcher import serve

DEFAULT_PORT = 8202


def _build(args: argparse.Namespace) -> MCPServer:
    latency = latency_ms_from_env("KNOWLEDGE_LATENCY_MS")
    try:
        kb = KnowledgeBase(load_articles())
    except (OSError, ValueError) as exc:
        raise ServerConfigError(f"cannot load the knowledge base: {exc}") from None
    return create_server(kb, latency_ms=latency, resource_auth=getattr(args, "resource_auth", None))


def main(argv: Sequence[str] | None = None) -> int:
    return serve(
        _build,
        argv,
        DEFAULT_PORT,
        prog=SERVER_NAME,
        description="Knowledge-base MCP server (search support-policy articles).",
    )


if __name__ == "__main__":
    sys.exit(main())
