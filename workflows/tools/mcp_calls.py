"""Workflow-side MCP calls: tool listings, tool calls and semantic lookups as activities.

Thin wrappers over ``temporalio.mcp.TemporalMCPClient`` that apply the profile's timeouts and
retry policy, give every activity a readable summary for the Temporal UI, and turn activity
failures into ``RunFailed`` (workflows/failures.py) with a failure class. Used only from
workflow code.

A server the worker sends access tokens (``ServerSettings.identity``, resolved when the
profile was loaded) gets the run's principal as the activities' ``factory_argument``
(:func:`identity`): id and roles, non-secret, recorded in history; the worker mints the token
from it (activities/mcp_auth.py). Other servers get none, so their connections stay pooled.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from mcp.types import CallToolResult, ListToolsResult
    from temporalio.mcp import TemporalMCPClient

    from activities.payloads import TEMPORAL_PAYLOAD_ERROR
    from activities.tool_view import result_text
    from keel.contracts import ContentRef, Principal, ServerSettings, ToolPolicy, names
    from keel.contracts.json_text import loads_bounded
    from workflows.failures import RunFailed, classify
    from workflows.tools.validation import LookupRequest, LookupResult

# The worker heartbeats every 2 s while an MCP call runs (activities/mcp.py): a lost worker
# is noticed in 10 s, whatever the tool's own timeout.
MCP_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# A lookup answered in plain text fails the checks that need it (it used to pass as empty).
PLAIN_TEXT_LOOKUP_PATCH = "lookup-needs-structured-data"


def activity_config(
    server: ServerSettings,
    summary: str,
    policy: ToolPolicy | None = None,
    single_attempt: bool = False,
) -> Any:
    """Timeouts from the tool's policy, else its server's; one attempt when retrying is unsafe."""
    start_to_close = (policy.timeout_seconds if policy else None) or server.timeout_seconds
    schedule_to_close = (
        policy.schedule_to_close_seconds if policy else None
    ) or server.schedule_to_close_seconds
    config: dict[str, Any] = {
        "start_to_close_timeout": timedelta(seconds=start_to_close),
        "heartbeat_timeout": MCP_HEARTBEAT_TIMEOUT,
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(milliseconds=500),
            maximum_interval=timedelta(seconds=10),
            maximum_attempts=1 if single_attempt else server.max_attempts,
            # a result over Temporal's payload limit would be produced again by a retry, and
            # the tool's side effect with it (the worker cuts results below it first)
            non_retryable_error_types=[TEMPORAL_PAYLOAD_ERROR],
        ),
        "summary": summary,
    }
    if schedule_to_close is not None:
        config["schedule_to_close_timeout"] = timedelta(seconds=schedule_to_close)
    return config


def identity(server: ServerSettings, principal: Principal | None) -> dict[str, Any] | None:
    """The ``factory_argument`` of ``server``'s activities: whom the worker's access token
    names (``{"id", "roles"}``, and ``"scopes"`` when the profile sets them), or None."""
    if not server.identity or principal is None:
        return None
    argument: dict[str, Any] = {"id": principal.id, "roles": list(principal.roles)}
    if server.scopes is not None:
        argument["scopes"] = list(server.scopes)
    return argument


def mcp_client(
    server: ServerSettings, config: Any, principal: Principal | None
) -> TemporalMCPClient:
    """The workflow's MCP client of ``server`` for one operation."""
    return TemporalMCPClient(
        server.name, activity_config=config, factory_argument=identity(server, principal)
    )


def call_summary(tool: str, arguments: dict[str, Any]) -> str:
    args = json.dumps(arguments, separators=(",", ":"))
    return f"{tool} {args[:120]}"


@dataclass(frozen=True)
class Caller:
    """Who a tool call is for and what vouches for it: the run's principal (the worker's
    access token names it, activities/mcp_auth.py) and, for a call a human approved, the
    approval mark the worker turns into a grant (activities/grants.py)."""

    principal: Principal | None = None
    approval: dict[str, Any] | None = None


async def list_tools(server: ServerSettings, principal: Principal | None = None) -> ListToolsResult:
    client = mcp_client(server, activity_config(server, "list tools"), principal)
    try:
        return await client.list_tools()
    except ActivityError as exc:
        failure, message = classify(exc, f"MCP server {server.name!r} (list tools)")
        raise RunFailed(failure, message) from None


async def call_tool(
    server: ServerSettings,
    tool: str,
    arguments: dict[str, Any],
    key: str | None,
    policy: ToolPolicy | None = None,
    single_attempt: bool = False,
    caller: Caller | None = None,
) -> CallToolResult:
    """One tool call; ``key`` (the idempotency key) travels in the request's ``_meta``, and so
    does the server's ``max_result_bytes``, which the worker takes out and cuts the result to
    (activities/tool_results.py), and — for a call a human approved — ``caller.approval``,
    which the worker turns into an approval grant (activities/grants.py)."""
    config = activity_config(server, call_summary(tool, arguments), policy, single_attempt)
    caller = caller or Caller()
    client = mcp_client(server, config, caller.principal)
    meta: Any = {names.META_MAX_RESULT_BYTES: server.max_result_bytes}
    if key:
        meta[names.META_IDEMPOTENCY_KEY] = key
    if caller.approval is not None:
        meta[names.META_APPROVAL] = caller.approval
    result = await client.call_tool(tool, arguments, meta=meta)
    return as_tool_error(result, error_pattern(server, policy))


def error_pattern(server: ServerSettings, policy: ToolPolicy | None) -> str | None:
    """The profile's error pattern for a tool: its policy's, else its server's."""
    if policy is not None and policy.error_pattern is not None:
        return policy.error_pattern
    return server.error_pattern


def as_tool_error(result: CallToolResult, pattern: str | None) -> CallToolResult:
    """A result whose text matches the profile's error pattern (``Error: …`` from a server
    that answers errors as plain text) is a tool error, as if the server had set ``isError``:
    the step's outcome is ``tool_error`` and a lookup that returns it fails."""
    if result.is_error or pattern is None or not re.search(pattern, result_text(result)):
        return result
    return result.model_copy(update={"is_error": True})


def activity_meta(result: CallToolResult) -> tuple[int, float | None]:
    """Attempt number and worker-side latency stamped by the worker's MCP interceptor."""
    meta = result.meta or {}
    attempt = meta.get(names.META_ATTEMPT)
    latency = meta.get(names.META_LATENCY_MS)
    return (
        int(attempt) if isinstance(attempt, int) else 1,
        float(latency) if isinstance(latency, int | float) else None,
    )


def stored_refs(result: CallToolResult) -> tuple[ContentRef | None, ContentRef | None]:
    """What the worker stored of ``result`` (activities/tool_results.py): the model's view of
    it and, for a result it cut, the full result; None where it stored nothing."""
    meta = result.meta or {}
    return _ref(meta.get(names.META_VIEW)), _ref(meta.get(names.META_CONTENT))


def _ref(value: Any) -> ContentRef | None:
    if not isinstance(value, dict):
        return None
    try:
        return ContentRef.model_validate(value)
    except ValueError:
        return None


def lookup_result(result: CallToolResult) -> LookupResult:
    """A lookup's answer for the semantic checks: its structured content, else its text if
    that is a JSON object; plain text is kept as ``text`` with no data, which fails every
    check that needs the lookup (and is what an approver sees as the call's context)."""
    text = result_text(result)
    if result.is_error:
        return LookupResult(ok=False, data=None, error=text)
    data = result.structured_content
    if data is None:
        try:
            parsed = loads_bounded(text)
        except ValueError:  # not JSON (or nested too deep): plain text
            parsed = None
        data = parsed if isinstance(parsed, dict) else None
    if data is None and not _plain_text_fails():
        data = {}  # replaying a history recorded when plain text passed as an empty result
    return LookupResult(ok=True, data=data, error=None, text=text)


def _plain_text_fails() -> bool:
    """Outside a workflow (unit tests), always; in one, unless replaying an older history."""
    return not workflow.in_workflow() or workflow.patched(PLAIN_TEXT_LOOKUP_PATCH)


async def run_lookups(
    requests: list[LookupRequest],
    servers: dict[str, ServerSettings],
    policies: dict[str, ToolPolicy] | None = None,
    principal: Principal | None = None,
) -> dict[str, LookupResult]:
    """Run a call's semantic lookups (read-only tools) concurrently; no idempotency key."""

    async def one(request: LookupRequest) -> LookupResult:
        try:
            result = await call_tool(
                servers[request.server], request.tool, request.arguments, key=None,
                policy=(policies or {}).get(request.tool), caller=Caller(principal),
            )  # fmt: skip
        except ActivityError as exc:
            failure, message = classify(exc, f"lookup {request.tool!r} on {request.server!r}")
            raise RunFailed(failure, message) from None
        return lookup_result(result)

    results = await asyncio.gather(*(one(r) for r in requests))
    return {r.name: res for r, res in zip(requests, results, strict=True)}
