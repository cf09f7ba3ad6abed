"""Running one validated tool call as an activity and recording it as a step."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from keel.contracts import StepRecord, ToolCall, ToolSpec
    from workflows.failures import RunFailed, classify
    from workflows.tools.catalog import result_text
    from workflows.tools.mcp_calls import activity_meta, call_tool
    from workflows.tools.trust import retry_is_unsafe

if TYPE_CHECKING:
    from workflows.agent.state import RunContext


def tool_record(step: int, call: ToolCall, started: datetime, **fields: Any) -> StepRecord:
    fields.setdefault("latency_ms", 0.0)
    return StepRecord(
        step=step, kind="tool", name=call.name, tool_call_id=call.id, started_at=started, **fields
    )


class ToolCallFailed(Exception):
    """The call could not be delivered (after retries); carries its step record."""

    def __init__(self, record: StepRecord, failure: RunFailed) -> None:
        super().__init__(failure.message)
        self.record = record
        self.failure = failure


async def execute_call(
    ctx: RunContext, step: int, call: ToolCall, tool: ToolSpec, arguments: dict[str, Any],
    validation: str = "passed",
) -> tuple[str, StepRecord]:  # fmt: skip
    """Run the call with its stable idempotency key; return (text for the model, record)."""
    key = f"{ctx.workflow_id}:{step}:{call.id}"
    server = ctx.servers[tool.server]
    single = retry_is_unsafe(server, tool, ctx.policies.get(tool.name))
    started = workflow.now()
    ctx.reporter.tool_started(step, tool.name, call.id, tool.server, arguments)
    try:
        result = await call_tool(
            server, tool.name, arguments, key, ctx.policies.get(tool.name), single
        )
    except ActivityError as exc:
        failure, message = classify(exc, f"tool {tool.name!r} on {tool.server!r}")
        if single:
            failure = "upstream_unavailable"
            message += (
                " — not retried: the server is not trusted to deduplicate this call, so a human"
                f" must check whether it took effect (idempotency key {key})"
            )
        record = tool_record(step, call, started, server=tool.server, outcome="failed",
                             detail=message, idempotency_key=key, validation=validation,
                             latency_ms=_elapsed(started))  # fmt: skip
        ctx.reporter.tool_finished(record, arguments, message)
        raise ToolCallFailed(record, RunFailed(failure, message)) from None
    text = result_text(result)
    attempts, latency = activity_meta(result)
    record = tool_record(step, call, started, server=tool.server,
                         latency_ms=latency if latency is not None else _elapsed(started),
                         attempts=attempts, outcome="tool_error" if result.is_error else "ok",
                         detail=text[:200], idempotency_key=key,
                         validation=validation)  # fmt: skip
    ctx.reporter.tool_finished(record, arguments, text, result.structured_content)
    return text, record


def _elapsed(started: datetime) -> float:
    return (workflow.now() - started).total_seconds() * 1000
