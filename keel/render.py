"""Plain-text rendering of run status and results for terminals."""

from __future__ import annotations

import textwrap

from keel.models import RunResult, RunStatus, StepRecord


def status_line(status: RunStatus) -> str:
    usage = status.usage
    return (
        f"[{status.state}] step {status.step} · {status.tool_calls} tool call(s) ·"
        f" {usage.total_tokens} tokens · {status.last_event}"
    )


def step_line(record: StepRecord) -> str:
    what = record.name if record.kind == "model" else f"{record.server}.{record.name}"
    tokens = f" {record.usage.total_tokens} tok" if record.usage else ""
    retry = f" attempts={record.attempts}" if record.attempts > 1 else ""
    detail = record.detail.replace("\n", " ")
    if len(detail) > 70:
        detail = detail[:67] + "..."
    return (
        f"  {record.step:>2} {record.kind:<5} {what:<34} {record.latency_ms:>8.0f} ms"
        f"{tokens}{retry} {record.outcome}  {detail}"
    )


def result_text(result: RunResult) -> str:
    lines = [f"status: {result.status}"]
    if result.stop_reason:
        lines.append(f"stop reason: {result.stop_reason}")
    if result.failure_class:
        lines.append(f"failure class: {result.failure_class}")
    if result.error:
        lines.append(f"error: {result.error}")
    lines.append(
        f"model calls: {result.model_calls} · tool calls: {result.tool_calls} ·"
        f" tokens: {result.usage.input_tokens} in / {result.usage.output_tokens} out"
    )
    lines.append("steps:")
    lines.extend(step_line(r) for r in result.steps)
    if result.final_answer:
        lines.append("final answer:")
        lines.append(textwrap.indent(textwrap.fill(result.final_answer, 96), "  "))
    return "\n".join(lines)
