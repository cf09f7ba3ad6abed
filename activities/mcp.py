"""MCP tool calls as activities: ``temporalio-mcp``'s plugin plus what Keel adds around it.

The plugin registers ``temporalio.mcp.<server>.list-tools`` / ``.call-tool`` activities for
every configured server and keeps one pooled MCP connection per server in the worker. Keel
adds a worker interceptor that stamps each tool result with the attempt number and the
latency measured on the worker, so step records can report attempts without a custom
activity (``temporalio-mcp`` returns the plain ``CallToolResult``), and runs every MCP
activity of a server through that server's circuit breaker (activities/breaker.py), so a
server that is down makes runs wait out a cool-down instead of each trying to connect.
The same interceptor observes every tool-call attempt (activities/observe.py): one
``tool.call`` log event, one ``execute_tool {tool}`` span, the tool-call metrics; and turns an
approved call's ``io.keel/approval`` mark into a signed approval grant (activities/grants.py),
and names the run in every tool call's ``_meta`` (``io.keel/run``, for sandboxed evals).
With a content store it keeps a tool result's full content and the model's view of it there
(activities/tool_results.py), so history carries each result once.
With a signing key, HTTP connections carry the worker's access tokens (activities/mcp_auth.py),
and a server's 401/403 fails the attempt as a non-retryable ``MCPAccessDenied``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp import Client, StdioServerParameters
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.mcp import MCPPlugin
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from activities.breaker import BreakerConfig, BreakerRegistry, Clock, root_cause
from activities.grants import GrantMinter
from activities.heartbeat import heartbeating
from activities.mcp_auth import MCP_ACCESS_DENIED_ERROR_TYPE, AccessTokens, refusing_denied
from activities.observe import ToolCallObserver
from activities.payloads import SAFE_PAYLOAD_BYTES, json_size, too_large
from activities.tool_results import DEFAULT_MAX_RESULT_BYTES, keep_result
from keel.contracts import names
from keel.runtime.config import MCPServerTarget, Settings
from keel.runtime.store.content import ContentStore
from keel.runtime.telemetry import Telemetry

MCP_ACTIVITY_PREFIX = "temporalio.mcp."
MCP_PROTOCOL_ERROR_TYPE = "MCPProtocolError"
MCP_UNAVAILABLE_ERROR_TYPE = "MCPServerUnavailable"


def client_factory(
    target: MCPServerTarget, read_timeout: float, tokens: AccessTokens | None = None
) -> Callable[..., Client]:
    """A factory the plugin calls to open a connection to ``target``.

    An HTTP factory takes the workflow's ``factory_argument`` (the run's principal, or None
    for a connection shared by runs); with ``tokens`` every request carries an access token
    for it. A stdio factory takes none (an argument would respawn the server per call)."""
    if target.url:
        url = target.url

        def http_client(argument: Any = None) -> Client:
            if tokens is None:
                return Client(url, read_timeout_seconds=read_timeout)
            return tokens.client(url, argument, read_timeout)

        return http_client
    params = StdioServerParameters(command=target.command[0], args=list(target.command[1:]))
    return lambda: Client(params, read_timeout_seconds=read_timeout)


def build_mcp_plugin(
    servers: Mapping[str, MCPServerTarget],
    read_timeout: float,
    tokens: AccessTokens | None = None,
) -> MCPPlugin:
    """One plugin for every configured server (names are the durable names in workflows);
    ``tokens`` (None: no signing key) authenticate the HTTP ones."""
    return MCPPlugin(
        {name: client_factory(target, read_timeout, tokens) for name, target in servers.items()},
        connection_idle_timeout=timedelta(minutes=5),
    )


def mcp_plugin(settings: Settings) -> MCPPlugin:
    """The worker's plugin: its servers, its read timeout, its signing key's tokens."""
    return build_mcp_plugin(
        settings.mcp_servers,
        settings.mcp_read_timeout_seconds,
        AccessTokens.from_settings(settings),
    )


def mcp_server_of(activity_type: str) -> str | None:
    """The server name in ``temporalio.mcp.<server>.<operation>``; None for other activities.

    The operation is the last dotted part, so a server name containing dots still parses.
    """
    if not activity_type.startswith(MCP_ACTIVITY_PREFIX):
        return None
    server, dot, _operation = activity_type[len(MCP_ACTIVITY_PREFIX) :].rpartition(".")
    return server if dot and server else None


def mcp_server_failed(exc: BaseException) -> bool:
    """Whether an exception from an MCP activity counts against the server's circuit.

    A non-retryable ``MCPProtocolError`` (invalid params, unknown method, malformed result)
    means the server is up and answered, so it counts as a success. Tool results with
    ``is_error`` never get here: they are results, the tool working correctly. Nor does a
    refused token (``MCPAccessDenied``): the server answered. Everything else (connection
    refused, timeouts, retryable JSON-RPC errors, unexpected exceptions) is a failure.
    """
    if isinstance(exc, ApplicationError) and exc.type == MCP_ACCESS_DENIED_ERROR_TYPE:
        return False  # the server answered: it refused the token, it is up
    if isinstance(exc, ApplicationError) and exc.type == MCP_PROTOCOL_ERROR_TYPE:
        if exc.details and exc.details[0] == names.MCP_CALL_IN_PROGRESS:
            return False  # the ledger answered "a twin of this call is running": server is up
        return not exc.non_retryable
    return True


def mcp_breakers(
    config: BreakerConfig | None = None, *, clock: Clock = time.monotonic
) -> BreakerRegistry:
    """The registry of MCP server circuits (one per server name)."""
    return BreakerRegistry("mcp", "MCP server", config, is_failure=mcp_server_failed, clock=clock)


def circuit_wait_budget(now: datetime | None = None) -> float:
    """How long this attempt may wait for its server's open circuit: what is left of its
    start-to-close (and schedule-to-close) timeout, less a reserve for the call itself (a
    quarter of the timeout, at least a second). Waiting instead of failing at once keeps a
    short outage from spending the run's retries on ``CircuitOpen``."""
    info = activity.info()
    now = now or datetime.now(UTC)
    limits = []
    if info.start_to_close_timeout:
        spent = (now - info.started_time).total_seconds()
        total = info.start_to_close_timeout.total_seconds()
        limits.append(total - spent - max(1.0, total / 4))
    if info.schedule_to_close_timeout:
        spent = (now - info.scheduled_time).total_seconds()
        total = info.schedule_to_close_timeout.total_seconds()
        limits.append(total - spent - max(1.0, total / 4))
    return max(0.0, min(limits)) if limits else 0.0


def server_unavailable(server: str, error: BaseException) -> ApplicationError:
    """A retryable error naming the server and the underlying cause (an exception group from
    the MCP client's task groups unwrapped), instead of "unhandled errors in a TaskGroup"."""
    cause = root_cause(error)
    text = " ".join(str(cause).split()) or "no details"
    return ApplicationError(
        f"MCP server {server!r} unavailable: {type(cause).__name__}: {text}",
        type=MCP_UNAVAILABLE_ERROR_TYPE,
        non_retryable=False,
    )


class _StampToolResults(ActivityInboundInterceptor):
    def __init__(
        self,
        next: ActivityInboundInterceptor,
        breakers: BreakerRegistry,
        observer: ToolCallObserver,
        grants: GrantMinter,
        store: ContentStore | None,
    ) -> None:
        super().__init__(next)
        self._breakers = breakers
        self._observer = observer
        self._grants = grants
        self._store = store

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        server = mcp_server_of(info.activity_type)
        if server is None:
            return await super().execute_activity(input)
        if not info.activity_type.endswith(".call-tool"):
            return check_size(await self._run(server, input), info.activity_type)
        limit = take_result_limit(input)
        stamp_run(info.workflow_id, input)
        self._grants.attach(server, info.workflow_id, input)
        with self._observer.observe(server, input.args[0] if input.args else None) as call:
            result = await self._run(server, input)
            if isinstance(result, dict):
                result = await heartbeating(keep_result(self._store, result, limit))
            call.done(result)
        return check_size(result, info.activity_type)

    async def _run(self, server: str, input: ExecuteActivityInput) -> Any:
        is_tool_call = activity.info().activity_type.endswith(".call-tool")
        started = time.monotonic()
        # temporalio-mcp's activities do not heartbeat (and 0.2 does not surface MCP progress
        # notifications); heartbeating here while the call runs lets Temporal notice a dead
        # worker within the heartbeat timeout and deliver cancellations to the call.
        try:
            result = await heartbeating(
                self._breakers.call(
                    server,
                    lambda: refusing_denied(server, lambda: self.next.execute_activity(input)),
                    circuit_wait_budget(),
                )
            )
        except BaseExceptionGroup as group:
            raise server_unavailable(server, group) from None
        if is_tool_call and isinstance(result, dict):
            meta = dict(result.get("meta") or {})
            meta[names.META_ATTEMPT] = activity.info().attempt
            meta[names.META_LATENCY_MS] = round((time.monotonic() - started) * 1000, 3)
            result = {**result, "meta": meta}
        return result


def take_result_limit(input: ExecuteActivityInput) -> int:
    """The size the call's result is cut to (``io.keel/max-result-bytes`` in the request's
    ``_meta``, put there by the workflow from the server's settings), removed from the
    request: it is for this worker, not for the server."""
    request = input.args[0] if input.args else None
    meta = request.get("meta") if isinstance(request, dict) else None
    if not isinstance(request, dict) or not isinstance(meta, dict):
        return DEFAULT_MAX_RESULT_BYTES
    meta = dict(meta)
    limit = meta.pop(names.META_MAX_RESULT_BYTES, None)
    input.args = [{**request, "meta": meta or None}, *input.args[1:]]
    return limit if isinstance(limit, int) and limit > 0 else DEFAULT_MAX_RESULT_BYTES


def stamp_run(workflow_id: str | None, input: ExecuteActivityInput) -> None:
    """Name the run in the call-tool request's ``_meta`` (``io.keel/run`` = the workflow id),
    on every tool call, reads too: a support desk in sandbox mode (evals) serves each run from
    its own database copy. Added here, on the worker, not by the workflow: histories and
    their replay stay as they were. A value the workflow put there is kept: a child workflow
    acting for its parent (the fallback's ticket) may name the parent's run."""
    request = input.args[0] if input.args else None
    if not workflow_id or not isinstance(request, dict):
        return
    meta = request.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta.setdefault(names.META_RUN, workflow_id)
    input.args = [{**request, "meta": meta}, *input.args[1:]]


def check_size(result: Any, activity_type: str) -> Any:
    """Fail, without a retry, a result Temporal would refuse (its retry would repeat the call)."""
    size = json_size(result)
    if size > SAFE_PAYLOAD_BYTES:
        raise too_large(
            f"{activity_type} returned {size:,} bytes, over the {SAFE_PAYLOAD_BYTES:,} bytes an"
            " activity result may have; not retried"
        )
    return result


class ToolResultStamper(Interceptor):
    """Worker interceptor for MCP activities: per-server circuit, attempt and latency stamps,
    and the observation of every tool-call attempt.

    ``breakers`` is built once in worker.py; the default is a private registry with default
    settings so the interceptor is never unprotected. ``telemetry`` receives the spans and
    metrics; ``servers`` (the worker's targets) gives spans their ``server.address``;
    ``grants`` mints approval grants (default: none minted, approval marks dropped);
    ``store`` keeps full results and the model's views (default: none kept).
    """

    def __init__(
        self,
        breakers: BreakerRegistry | None = None,
        *,
        telemetry: Telemetry | None = None,
        servers: Mapping[str, MCPServerTarget] | None = None,
        grants: GrantMinter | None = None,
        store: ContentStore | None = None,
    ) -> None:
        self.store = store
        self.breakers = breakers if breakers is not None else mcp_breakers()
        self.observer = ToolCallObserver(
            telemetry, {name: target.url for name, target in (servers or {}).items()}
        )
        self.grants = grants if grants is not None else GrantMinter(None, servers)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _StampToolResults(next, self.breakers, self.observer, self.grants, self.store)
