"""MCP tool calls as activities: ``temporalio-mcp``'s plugin plus what Keel adds around it.

The plugin registers ``temporalio.mcp.<server>.list-tools`` / ``.call-tool`` activities for
every configured server and keeps one pooled MCP connection per server in the worker. Keel
adds a worker interceptor that stamps each tool result with the attempt number and the
latency measured on the worker, so step records can report attempts without a custom
activity (``temporalio-mcp`` returns the plain ``CallToolResult``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from mcp import Client, StdioServerParameters
from temporalio import activity
from temporalio.mcp import MCPPlugin
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from keel.config import MCPServerTarget

ATTEMPT_META_KEY = "io.keel/attempt"
LATENCY_META_KEY = "io.keel/latency-ms"
MCP_ACTIVITY_PREFIX = "temporalio.mcp."


def client_factory(target: MCPServerTarget, read_timeout: float) -> Callable[[], Client]:
    """A factory the plugin calls to open a connection to ``target``."""
    if target.url:
        url = target.url
        return lambda: Client(url, read_timeout_seconds=read_timeout)
    params = StdioServerParameters(command=target.command[0], args=list(target.command[1:]))
    return lambda: Client(params, read_timeout_seconds=read_timeout)


def build_mcp_plugin(servers: Mapping[str, MCPServerTarget], read_timeout: float) -> MCPPlugin:
    """One plugin for every configured server (names are the durable names in workflows)."""
    return MCPPlugin(
        {name: client_factory(target, read_timeout) for name, target in servers.items()},
        connection_idle_timeout=timedelta(minutes=5),
    )


class _StampToolResults(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        is_tool_call = info.activity_type.startswith(MCP_ACTIVITY_PREFIX) and (
            info.activity_type.endswith(".call-tool")
        )
        started = time.monotonic()
        result = await super().execute_activity(input)
        if is_tool_call and isinstance(result, dict):
            meta = dict(result.get("meta") or {})
            meta[ATTEMPT_META_KEY] = info.attempt
            meta[LATENCY_META_KEY] = round((time.monotonic() - started) * 1000, 3)
            result = {**result, "meta": meta}
        return result


class ToolResultStamper(Interceptor):
    """Worker interceptor: adds attempt and latency to every MCP tool-call result."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _StampToolResults(next)
