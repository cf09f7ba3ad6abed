"""The MCP servers' configuration error, and the environment numbers they read.

Every bad input (a CLI argument found unusable after parsing, a malformed environment
variable, an unusable database path) is a :class:`ServerConfigError`; the launcher turns it
into one ``<prog>: error: ...`` line on stderr and exit code 2, never a traceback. The
servers have their own type rather than Keel's ``ConfigError`` so that they depend on
nothing of Keel's runtime.
"""

from __future__ import annotations

import os


class ServerConfigError(Exception):
    """Bad user input discovered after parsing (an unusable path, a malformed variable).

    Raised by server factories, :func:`latency_ms_from_env`, the ledger's ``ttl_from_env``
    and the tracing setup; :func:`mcp_servers.shared.launcher.serve` exits 2 with its text.
    """


def latency_ms_from_env(variable: str) -> int:
    """Artificial per-call latency in ms from ``variable`` (default 0), or a config error.

    Both servers accept one (``SUPPORT_DESK_LATENCY_MS``, ``KNOWLEDGE_LATENCY_MS``) so tests
    and benchmarks can make tool calls slow enough to see that concurrent calls overlap.
    """
    raw = os.environ.get(variable, "").strip() or "0"
    try:
        value = int(raw)
    except ValueError:
        raise ServerConfigError(f"{variable} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ServerConfigError(f"{variable} must be >= 0, got {value}")
    return value
