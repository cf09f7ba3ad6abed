"""What a run tells the people and systems watching it, from workflow code only.

Three outputs for the same moments, all replay-safe:

* **live progress** — ``ProgressEvent`` s appended to the run's workflow stream (topic
  ``progress``, ``temporalio.contrib.workflow_streams``). Appending is workflow state, not a
  command: a replay rebuilds the same log, and since events are published only here, after
  the workflow has seen an activity's outcome, a retried activity never publishes twice.
* **log events** — ``workflows.report.events.emit`` (``workflow.logger``: silent during replay).
* **run-level metrics** — ``workflows.report.metrics`` (``workflow.metric_meter()``: same).

The activity side (``model.call``, ``tool.call``, spans, ``gen_ai.*`` metrics) lives in
``activities/``; the catalogue of every event is docs/operations.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import (
        ApprovalRequest,
        ChatResponse,
        Decision,
        DecisionRecord,
        LimitOverrides,
        Limits,
        Principal,
        ProgressEvent,
        RunResult,
        StepRecord,
        ToolPolicy,
    )
    from keel.runtime.logs import content
    from workflows.report import metrics
    from workflows.report.events import emit
    from workflows.report.progress_text import (
        approval_text,
        call_text,
        done_text,
        parse_result,
        shorten,
    )

Publish = Callable[[ProgressEvent], None]
# The ``run.started`` event's task is a preview: a 5 MB task is in history once, not in logs.
TASK_PREVIEW_CHARS = 4000
_DECIDED = {
    "approve": "approved",
    "edit": "approved with edits",
    "reject": "rejected",
    "timeout": "not decided in time",
}


class Reporter:
    """Publishes progress, emits log events and records metrics for one run.

    ``publish`` appends to the run's stream (``None``: progress goes nowhere, for code that
    runs without a stream); ``on_message`` sees every progress line (the workflow keeps the
    latest as the ``status`` query's ``last_event``).
    """

    def __init__(
        self,
        publish: Publish | None = None,
        on_message: Callable[[str], None] | None = None,
    ) -> None:
        self._publish = publish
        self._on_message = on_message
        self.profile = ""
        self.policies: Mapping[str, ToolPolicy] = {}

    def progress(
        self, kind: str, message: str, *, step: int | None = None, tool: str | None = None,
        **data: Any,
    ) -> None:  # fmt: skip
        event = ProgressEvent(
            kind=kind, message=shorten(message), at=workflow.now(), step=step, tool=tool, data=data
        )
        if self._publish is not None:
            self._publish(event)
        if self._on_message is not None:
            self._on_message(event.message)

    # ------------------------------------------------------------------ run

    def run_started(self, model: str, task: str, principal: Principal, limits: Limits) -> None:
        self.progress(
            "run.started", f"run started: profile {self.profile}, model {model}", model=model
        )
        emit(
            "run.started",
            profile=self.profile,
            model=model,
            task=content(_preview(task)),
            principal=principal.id,
            roles=list(principal.roles),
            limits=limits.model_dump(exclude_none=True),
        )

    def stop(self, step: int, reason: str, failure_class: str, message: str, action: str) -> None:
        """A stop condition tripped; ``action`` is ``halt`` or ``escalate``."""
        fields: dict[str, Any] = {
            "step": step, "reason": reason, "failure_class": failure_class, "action": action,
        }  # fmt: skip
        prefix = "stopped" if action == "halt" else "limit"
        self.progress("run.stop", f"{prefix} ({reason}): {message}", **fields)
        emit("run.stop", **fields, message=message)
        metrics.stop_tripped(self.profile, reason, action)

    def guidance_requested(self, step: int, message: str, timeout_seconds: float) -> None:
        self.progress(
            "guidance.requested",
            f"waiting for guidance from a human: {message}",
            step=step,
            timeout_seconds=timeout_seconds,
        )

    def guided(
        self, step: int, by: str | None, instruction: str, extend: LimitOverrides | None
    ) -> None:
        extended = extend.model_dump(exclude_none=True) if extend is not None else {}
        self.progress(
            "guidance.received",
            f"guidance from {by or 'a human'}: {instruction}",
            step=step,
            by=by,
            extend=extended,
        )
        emit("run.guided", step=step, by=by, instruction=content(instruction), extend=extended)

    def continued(self, step: int, generation: int, events: int, size: int) -> None:
        """The run continues as new (the next run of its workflow id goes on from here)."""
        self.progress(
            "run.continued",
            f"continued as new after step {step} ({events:,} events, {size:,} bytes of history)",
            step=step, generation=generation, history_events=events, history_bytes=size,
        )  # fmt: skip
        emit("run.continued", step=step, generation=generation, history_events=events,
             history_bytes=size)  # fmt: skip

    def finished(self, result: RunResult, step: int) -> None:
        tokens = result.usage.total_tokens
        summary = (
            f"{result.model_calls} step(s) · {result.tool_calls} tool call(s) ·"
            f" {tokens:,} tokens · ${result.cost_usd:.4f}"
        )
        if result.status == "completed":
            message = f"completed: {summary}"
        else:
            why = result.failure_class or result.stop_reason or "error"
            message = f"{result.status} ({why}): {result.error or ''} · {summary}"
        self.progress(
            "run.finished",
            message,
            step=step or None,
            status=result.status,
            failure_class=result.failure_class,
            stop_reason=result.stop_reason,
            model_calls=result.model_calls,
            tool_calls=result.tool_calls,
            tokens=tokens,
            cost_usd=result.cost_usd,
        )
        emit(
            "run.finished",
            step=step or None,
            profile=result.profile,
            model=result.model,
            status=result.status,
            failure_class=result.failure_class,
            stop_reason=result.stop_reason,
            error=result.error,
            steps=result.model_calls,
            tool_calls=result.tool_calls,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cached_tokens=result.usage.cached_tokens,
            cost_usd=result.cost_usd,
            approvals=len([r for r in result.approvals if r.decision != "refused"]),
            guidance=result.guidance,
        )
        metrics.run_finished(result)

    # ------------------------------------------------------------------ model

    def model_started(
        self, step: int, model: str, tier: str | None = None, route: str | None = None
    ) -> None:
        """A model step starts; ``tier`` and ``route`` (why it serves) when routed."""
        on = f" on {tier}" if tier else ""
        self.progress("model.started", f"step {step}: thinking{on}…", step=step, model=model,
                      **_routed(tier, route))  # fmt: skip

    def model_finished(
        self, step: int, response: ChatResponse, cost: float, tier: str | None = None,
        route: str | None = None,
    ) -> None:  # fmt: skip
        calls = len(response.tool_calls)
        outcome = f"{calls} tool call(s)" if calls else "an answer"
        usage = response.usage
        self.progress(
            "model.finished",
            f"step {step}: {response.model} replied with {outcome}"
            f" ({usage.total_tokens:,} tokens, {response.latency_ms / 1000:.1f}s)",
            step=step,
            **_routed(tier, route),
            model=response.model,
            tool_calls=calls,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            cost_usd=round(cost, 9),
            latency_ms=response.latency_ms,
            attempts=response.attempt,
        )

    # ------------------------------------------------------------------ tools

    def validated(
        self, step: int, tool: str, tool_call_id: str, *, layer: str | None = None,
        reason: str | None = None, edit: bool = False,
    ) -> None:  # fmt: skip
        """One validation outcome: ``layer`` None means the call passed every layer."""
        fields: dict[str, Any] = {
            "step": step, "tool": tool, "tool_call_id": tool_call_id, "layer": layer,
            "reason": reason,
        }  # fmt: skip
        outcome = "passed" if layer is None else "refused"
        emit("tool.validation", **fields, outcome=outcome, edit=edit)
        if layer is not None:
            what = "edited call to " + tool if edit else tool
            self.progress("tool.refused", f"refused {what} ({layer}): {reason}", **fields)

    def call_renamed(self, step: int, tool: str, position: int, original: str, new: str) -> None:
        """A tool call's id was missing or repeated in its turn and the run gave it another."""
        emit("tool.call_renamed", level=logging.WARNING, step=step, tool=tool,
             position=position, model_tool_call_id=original[:200], tool_call_id=new)  # fmt: skip

    def tool_started(self, step: int, tool: str, tool_call_id: str, server: str,
                     arguments: dict[str, Any]) -> None:  # fmt: skip
        self.progress(
            "tool.started",
            call_text(tool, arguments, self.policies.get(tool)),
            step=step,
            tool=tool,
            tool_call_id=tool_call_id,
            server=server,
        )

    def tool_finished(
        self, record: StepRecord, arguments: dict[str, Any], text: str, structured: Any = None
    ) -> None:
        ok = record.outcome == "ok"
        message = done_text(
            record.name, arguments, self.policies.get(record.name), ok=ok,
            text=text if record.outcome != "failed" else record.detail,
            data=parse_result(text, structured) if ok else None,
        )  # fmt: skip
        self.progress(
            "tool.finished",
            message,
            step=record.step,
            tool=record.name,
            tool_call_id=record.tool_call_id,
            outcome=record.outcome,
            latency_ms=record.latency_ms,
            attempts=record.attempts,
        )

    # ------------------------------------------------------------------ approvals

    def approval_requested(self, request: ApprovalRequest) -> None:
        what = approval_text(request.tool, request.arguments, self.policies.get(request.tool))
        fields = _request_fields(request)
        fields.update(
            tool_call_id=request.tool_call_id,
            reversibility=request.reversibility,
            approver_roles=request.approver_roles,
            digest=request.digest,
        )
        self.progress("approval.requested", f"waiting for approval: {what}", **fields)
        emit(
            "approval.requested",
            **fields,
            server=request.server,
            principal=request.principal.id,
            arguments=content(request.arguments),
        )

    def approval_escalated(self, request: ApprovalRequest) -> None:
        self.progress(
            "approval.escalated",
            f"no decision on {request.tool} in time: escalated, waiting until"
            f" {request.expires_at:%Y-%m-%d %H:%M:%S} UTC",
            **_request_fields(request),
        )
        emit("approval.escalated", **_request_fields(request))

    def approval_decided(
        self, request: ApprovalRequest, decision: Decision | None, now: datetime
    ) -> None:
        """Progress at the moment a decision is taken (``None``: nobody decided in time),
        before an approved call runs; the log event follows when the request is closed."""
        kind = decision.decision if decision is not None else "timeout"
        by = f" by {decision.by}" if decision is not None and decision.by else ""
        because = f" ({decision.reason})" if decision is not None and decision.reason else ""
        self.progress(
            "approval.decided",
            f"{request.tool} {_DECIDED[kind]}{by}{because}",
            step=request.step,
            tool=request.tool,
            approval_id=request.approval_id,
            decision=kind,
            by=decision.by if decision is not None else None,
            waited_seconds=(now - request.created_at).total_seconds(),
        )

    def approval_closed(self, record: DecisionRecord) -> None:
        """The request is closed with its outcome: log it, count it, time the human."""
        waited = (
            (record.at - record.requested_at).total_seconds()
            if record.requested_at is not None
            else None
        )
        emit(
            "approval.decision",
            step=record.step,
            approval_id=record.approval_id,
            tool=record.tool,
            decision=record.decision,
            by=record.by,
            reason=record.reason,
            outcome=record.outcome,
            waited_seconds=waited,
        )
        metrics.approval_decided(self.profile, record)

    def decision_refused(
        self, decision: Decision, why: str, request: ApprovalRequest | None = None
    ) -> None:
        """A decision that could not be accepted (a ``decide`` signal), or an accepted edit
        the checks refused (audit only; the request, if any, stays open)."""
        emit(
            "approval.decision",
            step=request.step if request is not None else None,
            approval_id=decision.approval_id,
            tool=request.tool if request is not None else None,
            decision="refused",
            requested=decision.decision,
            by=decision.by,
            reason=decision.reason,
            outcome=why,
            digest=decision.digest,
        )


def _routed(tier: str | None, route: str | None) -> dict[str, Any]:
    """The routing fields of a model step's progress data: none for an unrouted step."""
    return {} if route is None else {"tier": tier, "route": route}


def _request_fields(request: ApprovalRequest) -> dict[str, Any]:
    """What every approval event says of its request."""
    return {
        "step": request.step,
        "tool": request.tool,
        "approval_id": request.approval_id,
        "expires_at": request.expires_at.isoformat(),
    }


def _preview(text: str, limit: int = TASK_PREVIEW_CHARS) -> str:
    """``text`` as a log event carries it: its first ``limit`` characters and how many more."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters]"
