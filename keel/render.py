"""Plain-text rendering of run status, results and pending approvals for terminals.

Everything here may carry text from a model (arguments, answers, reasons), a tool (results,
errors) or a user (decision reasons), so every rendered line goes through
:func:`terminal_safe`: an escape sequence in a model-proposed argument is shown, never run.
"""

from __future__ import annotations

import json
import re
import textwrap
from datetime import UTC, datetime
from typing import Any

from keel.contracts import (
    ApprovalRequest,
    Decision,
    DecisionNodeRecord,
    DecisionOutcome,
    FallbackRecord,
    ProgressEvent,
    RunResult,
    RunStatus,
    StepRecord,
)

# C0 and C1 control characters (ESC starts every ANSI sequence; CSI is also U+009B), DEL,
# and the invisible characters that reorder or break lines (bidi overrides, line separators).
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control character shown as its escape (ESC as ``\\x1b``), so
    nothing a model, a tool or a user wrote can move the cursor, recolour, retitle or clear
    the terminal, or fake a line. ``multiline`` keeps newlines and tabs.

    The one sanitiser of everything Keel prints for people (``keel run``, ``keel watch``,
    ``keel status``, ``keel approvals``, decisions, errors).
    """

    def neutral(match: re.Match[str]) -> str:
        char = match.group()
        return char if multiline and char in "\n\t" else _escape(char)

    return _UNSAFE.sub(neutral, text)


def status_line(status: RunStatus) -> str:
    usage = status.usage
    continued = f" · continued as new {status.continued} time(s)" if status.continued else ""
    line = terminal_safe(
        f"[{status.state}] step {status.step} · {status.tool_calls} tool call(s) ·"
        f" {usage.total_tokens} tokens{continued} · {status.last_event}"
    )
    if status.fallback is not None:
        line += "\n  " + fallback_line(status.fallback)
    for call in status.unresolved_calls:  # lost write answers: what `keel resolve` needs
        arguments = json.dumps(call.arguments, separators=(",", ":"))
        line += "\n  " + terminal_safe(
            f"unresolved {call.tool}({arguments}) key {call.idempotency_key}: {call.error}"
        )
    return line


_MARKS = {
    "tool.started": "→",
    "tool.finished": "←",
    "tool.refused": "✗",
    "approval.requested": "⏸",
    "approval.escalated": "⏸",
    "approval.decided": "▶",
    "guidance.requested": "⏸",
    "guidance.received": "▶",
    "run.stop": "■",
    "run.continued": "↻",
    "run.finished": "■",
    "routing.escalated": "↑",
    "routing.deescalated": "↓",
    "routing.final_answer": "↑",
}


def progress_line(event: ProgressEvent) -> str:
    """``12:01:02  → looking up order ORD-1042…``: one line per live progress event."""
    at = _aware(event.at).astimezone().strftime("%H:%M:%S")
    return terminal_safe(f"{at}  {_MARKS.get(event.kind, '·')} {event.message}")


def step_line(record: StepRecord) -> str:
    # A tool call refused before it reached a server (rejected, invalid) has no server.
    what = (
        f"{record.server}.{record.name}" if record.kind == "tool" and record.server else record.name
    )
    tokens = f" {record.usage.total_tokens} tok" if record.usage else ""
    retry = f" attempts={record.attempts}" if record.attempts > 1 else ""
    detail = record.detail.replace("\n", " ")
    if len(detail) > 70:
        detail = detail[:67] + "..."
    line = terminal_safe(
        f"  {record.step:>2} {record.kind:<5} {what:<34} {record.latency_ms:>8.0f} ms"
        f"{tokens}{retry} {record.outcome}  {detail}"
    )
    return line + route_line(record)


def route_line(record: StepRecord) -> str:
    """The tier that served a routed model step and why, as the line under the step's
    (``       tier strong: escalated after a tool error at step 1``); empty when unrouted."""
    if record.route is None:
        return ""
    purpose = f" ({record.purpose})" if record.purpose else ""
    return "\n" + terminal_safe(f"{'':8}tier {record.tier or '[model]'}{purpose}: {record.route}")


def tiers_line(result: RunResult) -> str | None:
    """``tiers: fast 2 steps $0.000120 · strong 1 step $0.001800``: what each tier served of
    a routed run (None when no step was routed)."""
    served: dict[str, tuple[int, float]] = {}
    for record in result.steps:
        if record.kind == "model" and record.route is not None:
            steps, cost = served.get(record.tier or "[model]", (0, 0.0))
            served[record.tier or "[model]"] = (steps + 1, cost + (record.cost_usd or 0.0))
    if not served:
        return None
    parts = [
        f"{tier} {steps} step{'' if steps == 1 else 's'} ${cost:.6f}"
        for tier, (steps, cost) in served.items()
    ]
    return "tiers: " + " · ".join(parts)


def fallback_line(record: FallbackRecord) -> str:
    """``fallback: keel.fallback.ticket → ticket TCK-5006 (completed)``, with the child's id,
    and the detail of a fallback that failed."""
    ticket = f" → ticket {record.ticket_id}" if record.ticket_id else ""
    line = f"fallback: {record.workflow}{ticket} ({record.status}) · {record.workflow_id}"
    if record.status == "failed" and record.detail:
        line += f": {record.detail}"
    return terminal_safe(line)


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
    if result.cost_usd:
        lines[-1] += f" · cost: ${result.cost_usd:.6f}"
    tiers = tiers_line(result)
    if tiers is not None:
        lines.append(tiers)
    lines.append("steps:")
    lines.extend(step_line(r) for r in result.steps)
    if result.approvals:
        lines.append("approvals (audit trail):")
        lines.extend(
            f"  {r.at:%H:%M:%S} {r.approval_id} {r.tool}: {r.decision}"
            f" by {r.by or '-'} → {r.outcome}" + (f" ({r.reason})" if r.reason else "")
            for r in result.approvals
        )
    if result.decisions:
        lines.append("decisions:")
        lines.extend(decision_record_line(d) for d in result.decisions)
    if result.fallback is not None:
        lines.append(fallback_line(result.fallback))
    if result.final_answer:
        lines.append("final answer:")
        lines.append(textwrap.indent(textwrap.fill(result.final_answer, 96), "  "))
    return terminal_safe("\n".join(lines), multiline=True)


def decision_record_line(record: DecisionNodeRecord) -> str:
    """``  claim: {"category": "damaged", …} by human (edited by alice) via strong → human``."""
    answer = json.dumps(record.answer, sort_keys=True) if record.answer is not None else "none"
    who = record.model if record.decided_by == "model" and record.model else record.decided_by
    sure = f" at {record.confidence:.2f}" if record.confidence is not None else ""
    path = f" via {' → '.join(record.escalations)}" if record.escalations else ""
    return f"  {record.node}: {shorten(answer, 70)} by {who}{sure} ({record.outcome}){path}"


# --------------------------------------------------------------------------------------------
# Approvals
# --------------------------------------------------------------------------------------------

_MONEY_KEYS = ("total", "paid", "refunded", "refundable", "amount", "balance")
_DETAIL_WIDTH = 100


def shorten(text: str, width: int) -> str:
    """One line of at most ``width`` characters: a terminal row must not wrap."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def compact_json(value: Any, width: int = _DETAIL_WIDTH) -> str:
    return shorten(json.dumps(value, separators=(",", ":"), ensure_ascii=False), width)


def duration(seconds: float) -> str:
    """``45s``, ``3m05s``, ``2h10m``, ``1d04h``: precise when short, coarse when long."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _summary_of(name: str, data: Any) -> str:
    """What a lookup says about the thing a call acts on: its id, status and amounts.

    A decider needs "refund 20.00 of an order that paid 89.00", not the whole order record;
    anything that does not look like a record is shown as compact JSON instead.
    """
    if not isinstance(data, dict):
        return f"{name} {compact_json(data, 60)}"
    ident = data.get(f"{name}_id") or next(
        (v for k, v in data.items() if k.endswith("_id") and isinstance(v, str)), None
    )
    money = [
        f"{key} {value:.2f}"
        for key in _MONEY_KEYS
        if isinstance(value := data.get(key), int | float) and not isinstance(value, bool)
    ]
    if ident is None and not money:
        return f"{name} {compact_json(data, 60)}"
    head = f"{name} {ident}" if ident else name
    if isinstance(data.get("status"), str):
        head += f" ({data['status']})"
    if not money:
        return head
    currency = f" {data['currency']}" if isinstance(data.get("currency"), str) else ""
    return f"{head}: {' · '.join(money)}{currency}"


def context_summary(context: dict[str, Any]) -> str:
    """One line over every lookup result in an approval request's context."""
    return shorten("; ".join(_summary_of(n, d) for n, d in context.items()), _DETAIL_WIDTH)


def _principal(request: ApprovalRequest) -> str:
    roles = ",".join(request.principal.roles)
    return f"{request.principal.id} ({roles})" if roles else request.principal.id


def _expiry(request: ApprovalRequest, now: datetime) -> str:
    left = (_aware(request.expires_at) - now).total_seconds()
    state = duration(left) if left > 0 else "expired"
    return f"{state}, escalated" if request.escalated else state


def approval_lines(requests: list[ApprovalRequest], now: datetime | None = None) -> str:
    """A table of pending approvals, each row followed by what a decider needs to judge it."""
    if not requests:
        return "no approvals pending"
    now = now or datetime.now(UTC)
    header = ("RUN", "APPROVAL", "TOOL", "PRINCIPAL", "REVERSIBILITY", "AGE", "EXPIRES IN")
    rows = [
        (
            r.workflow_id,
            r.approval_id,
            r.tool,
            _principal(r),
            r.reversibility,
            duration((now - _aware(r.created_at)).total_seconds()),
            _expiry(r, now),
        )
        for r in requests
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [f"{len(requests)} approval(s) pending", "", line(header)]
    for request, row in zip(requests, rows, strict=True):
        out.append(line(row))
        out.append(f"    arguments  {compact_json(request.arguments)}")
        if request.reason:
            first = request.reason.strip().splitlines()[0] if request.reason.strip() else ""
            out.append(f"    reason     {shorten(first, _DETAIL_WIDTH)}")
        if request.context:
            out.append(f"    context    {context_summary(request.context)}")
        if request.approver_roles:
            out.append(f"    deciders   roles {', '.join(request.approver_roles)}")
        if request.digest:
            out.append(f"    digest     {request.digest}")
    out += [
        "",
        "decide: keel approve RUN APPROVAL | keel reject RUN APPROVAL --reason TEXT"
        " | keel edit RUN APPROVAL --arguments JSON  (add --digest DIGEST to decide only"
        " what you read)",
    ]
    return terminal_safe("\n".join(out), multiline=True)


def unsigned_warning(requests: list[ApprovalRequest]) -> str | None:
    """One line under the table when some listed requests accept unsigned decisions."""
    unsigned = sum(1 for r in requests if not r.identity_required)
    if not unsigned:
        return None
    return (
        f"warning: {unsigned} of {len(requests)} request(s) accept unsigned decisions: anyone"
        " who can send decide can claim any name and role (approvals.require_identity,"
        " docs/security.md)"
    )


_VERBS = {"approve": "approved", "reject": "rejected", "edit": "edited"}


def deciding_line(request: ApprovalRequest) -> str:
    """What a decision is about to decide: ``deciding apr-…: support_desk.refund_order
    {"amount":20.0,…} (digest sha256:…)``: printed before it is sent."""
    what = f"{request.server}.{request.tool} {compact_json(request.arguments, 400)}"
    return f"deciding {request.approval_id}: {what} (digest {request.digest or 'none'})"


def decision_line(decision: Decision, workflow_id: str, outcome: DecisionOutcome) -> str:
    """``approved: apr-… in run X: executed`` (or ``not approved: ...``, or ``approved: … in
    run X: run failed (…)`` when the run ended before the decision was carried out)."""
    verb = _VERBS[decision.decision]
    head = verb if outcome.accepted else f"not {verb}"
    text = f"{head}: {outcome.approval_id} in run {workflow_id}: {outcome.status}"
    return terminal_safe(f"{text} ({outcome.message})" if outcome.message else text)
