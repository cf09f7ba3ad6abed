"""Running one validated tool call as an activity and recording it as a step.

A write to a server that does not deduplicate gets one attempt; when its answer is lost the
call waits for a human's ``resolve`` (workflows/tools/lost.py) instead of failing the run.
A result's record keeps the reference of what the worker stored of it (its full content when
the worker cut it, else the model's view), and the view is offered to the transcript, so the
tool message is sent by reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from mcp.types import CallToolResult

    from activities.payloads import PAYLOAD_TOO_LARGE, TEMPORAL_PAYLOAD_ERROR
    from activities.tool_view import result_images, result_text
    from keel.contracts import Resolution, StepRecord, ToolCall, ToolSpec, UnresolvedCall, names
    from workflows.failures import RunFailed, RunHalted, classify
    from workflows.tools.mcp_calls import Caller, activity_meta, call_tool, stored_refs
    from workflows.tools.trust import retry_is_unsafe

if TYPE_CHECKING:
    from workflows.agent.state import RunContext


RESULT_TOO_LARGE = (PAYLOAD_TOO_LARGE, TEMPORAL_PAYLOAD_ERROR)


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


@dataclass(frozen=True)
class _Call:
    """One checked call on its way to its server."""

    step: int
    call: ToolCall
    tool: ToolSpec
    arguments: dict[str, Any]
    key: str
    started: datetime
    validation: str
    approval: dict[str, Any] | None = None  # the human decision it carries out (io.keel/approval)

    @property
    def what(self) -> str:
        return f"tool {self.tool.name!r} on {self.tool.server!r}"


async def execute_call(
    ctx: RunContext, step: int, call: ToolCall, tool: ToolSpec, arguments: dict[str, Any],
    validation: str = "passed", approval: dict[str, Any] | None = None,
) -> tuple[str, StepRecord]:  # fmt: skip
    """Run the call with its stable idempotency key; return (text for the model, record).
    ``approval``: the decision an approved call carries to the worker, which mints the
    server's approval grant from it (``{"id", "digest", "by"}``; None for other calls)."""
    key = f"{ctx.workflow_id}:{step}:{call.id}"
    single = retry_is_unsafe(ctx.servers[tool.server], tool, ctx.policies.get(tool.name))
    one = _Call(step, call, tool, arguments, key, workflow.now(), validation, approval)
    ctx.reporter.tool_started(step, tool.name, call.id, tool.server, arguments)
    try:
        result = await _send(ctx, one, single)
    except ActivityError as exc:
        failure, message = classify(exc, one.what)
        if not single or not answer_lost(exc):
            raise _failed(ctx, one, RunFailed(failure, message)) from None
        if not workflow.patched(names.PATCH_LOST_ANSWER):  # runs recorded before: fail
            message += (
                " — not retried: the server is not trusted to deduplicate this call, so a human"
                f" must check whether it took effect (idempotency key {key})"
            )
            raise _failed(ctx, one, RunFailed("upstream_unavailable", message)) from None
        return await _resolve_lost(ctx, one, message)
    return _finished(ctx, one, result)


async def _send(ctx: RunContext, one: _Call, single: bool) -> CallToolResult:
    server = ctx.servers[one.tool.server]
    policy = ctx.policies.get(one.tool.name)
    return await call_tool(
        server,
        one.tool.name,
        one.arguments,
        one.key,
        policy,
        single,
        Caller(ctx.principal, one.approval),
    )


def _finished(
    ctx: RunContext, one: _Call, result: CallToolResult, retries: int = 0
) -> tuple[str, StepRecord]:
    text = result_text(result)
    if images := result_images(result):
        ctx.state.tool_images[one.call.id] = images
    attempts, latency = activity_meta(result)
    view, full = stored_refs(result)
    ctx.state.transcript.offer(view)  # the tool message goes by reference (agent/transcript.py)
    record = tool_record(one.step, one.call, one.started, server=one.tool.server,
                         latency_ms=latency if latency is not None else _elapsed(one.started),
                         attempts=attempts + retries,
                         outcome="tool_error" if result.is_error else "ok",
                         detail=detail_line(text), idempotency_key=one.key,
                         validation=one.validation, content_ref=full or view)  # fmt: skip
    ctx.reporter.tool_finished(record, one.arguments, text, result.structured_content)
    return text, record


def _failed(ctx: RunContext, one: _Call, failure: RunFailed, retries: int = 0) -> ToolCallFailed:
    record = tool_record(one.step, one.call, one.started, server=one.tool.server,
                         outcome="failed", detail=failure.message, idempotency_key=one.key,
                         validation=one.validation, attempts=1 + retries,
                         latency_ms=_elapsed(one.started))  # fmt: skip
    ctx.reporter.tool_finished(record, one.arguments, failure.message)
    return ToolCallFailed(record, failure)


async def _resolve_lost(ctx: RunContext, one: _Call, error: str) -> tuple[str, StepRecord]:
    """Wait for a human's ``resolve`` of a lost answer and carry it out (until it sticks)."""
    lost = ctx.state.lost
    retries = 0
    while True:
        waiting = UnresolvedCall(
            idempotency_key=one.key, step=one.step, tool_call_id=one.call.id,
            tool=one.tool.name, server=one.tool.server, arguments=one.arguments, error=error,
            since=workflow.now(), retries=retries,
        )  # fmt: skip
        ctx.reporter.guidance_requested(
            one.step,
            f"the answer of {one.tool.name} was lost ({error}); it may have taken effect:"
            f" resolve {one.key} with confirm, retry or abort",
            lost.timeout_seconds,
        )
        try:
            resolution = await lost.wait(waiting)
        except RunHalted as halted:
            raise _failed(ctx, one, halted, retries) from None
        ctx.reporter.guided(one.step, resolution.by or None, _said(resolution), None)
        if resolution.action == "abort":
            message = f"{one.tool.name} ({one.key}): answer lost, run aborted: {_said(resolution)}"
            raise _failed(ctx, one, RunHalted("lost_result_aborted", message), retries)
        if resolution.action == "confirm":
            return _confirmed(ctx, one, resolution, retries)
        retries += 1
        try:
            return _finished(ctx, one, await _send(ctx, one, True), retries)
        except ActivityError as exc:
            _, error = classify(exc, one.what)


def _confirmed(
    ctx: RunContext, one: _Call, resolution: Resolution, retries: int
) -> tuple[str, StepRecord]:
    """A human says the call took effect: the model sees the stated result."""
    text = resolution.result or ""
    record = tool_record(one.step, one.call, one.started, server=one.tool.server,
                         outcome="ok", attempts=1 + retries, idempotency_key=one.key,
                         detail=detail_line(f"confirmed by {resolution.by or 'a human'}: {text}"),
                         validation=one.validation,
                         latency_ms=_elapsed(one.started))  # fmt: skip
    ctx.reporter.tool_finished(record, one.arguments, text)
    return text, record


def _said(resolution: Resolution) -> str:
    reason = f": {resolution.reason}" if resolution.reason else ""
    return f"resolve {resolution.action} by {resolution.by or 'a human'}{reason}"


def answer_lost(error: ActivityError) -> bool:
    """Whether a failed one-attempt write may have taken effect unseen: its answer timed out,
    the connection broke, or the answer was too large to deliver. A server that *answered* with
    a refusal (a non-retryable protocol error such as invalid params) did not lose its answer:
    that call fails as any other."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return not cause.non_retryable or cause.type in RESULT_TOO_LARGE
    return True  # a timeout (start-to-close, heartbeat) or a cancelled attempt


def detail_line(text: str, limit: int = 200) -> str:
    """One line of a tool's answer for the step record: its first non-empty line (the last
    line of a Python traceback, which names the error), with how many lines were left out."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    traceback = lines[0].startswith("Traceback (most recent call last)") and len(lines) > 1
    first = lines[-1] if traceback else lines[0]
    if traceback:
        first = f"{first} (the tool answered a traceback of {len(lines)} lines)"
    elif len(lines) > 1:
        first = f"{first} (+{len(lines) - 1} more lines)"
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _elapsed(started: datetime) -> float:
    return (workflow.now() - started).total_seconds() * 1000
