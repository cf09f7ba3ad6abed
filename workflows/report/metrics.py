"""Run-level metrics recorded from workflow code, replay-safe.

``workflow.metric_meter()`` is the SDK's replay-safe meter: nothing is recorded while a
workflow replays history, so a worker restart does not count a run twice. The worker wires
the SDK runtime's metric buffer into the OpenTelemetry meter provider (keel/telemetry.py),
so these land next to the activities' ``gen_ai.*`` metrics, on OTLP and on Prometheus.
Names and attributes are listed in docs/operations.md.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import DecisionRecord, RunResult


def run_finished(result: RunResult) -> None:
    """Count the run by outcome and failure class; record its steps, cost and tokens."""
    meter = workflow.metric_meter().with_additional_attributes(
        {
            "profile": result.profile,
            "status": result.status,
            "failure_class": result.failure_class or "none",
        }
    )
    meter.create_counter("keel.runs", "Agent runs that ended", "{run}").add(1)
    meter.create_histogram("keel.run.steps", "Model calls per run", "{step}").record(
        result.model_calls
    )
    meter.create_histogram("keel.run.tool_calls", "Tool calls per run", "{call}").record(
        result.tool_calls
    )
    meter.create_histogram_float("keel.run.cost", "Cost of one run", "USD").record(result.cost_usd)
    if result.stop_reason:
        meter.create_counter("keel.stops", "Stop conditions that ended or paused a run").add(
            1, {"reason": result.stop_reason}
        )


def stop_tripped(profile: str, reason: str, action: str) -> None:
    """A stop condition tripped; ``action`` is ``halt`` or ``escalate``."""
    workflow.metric_meter().create_counter(
        "keel.stop_conditions", "Stop conditions tripped", "{trip}"
    ).add(1, {"profile": profile, "reason": reason, "action": action})


def approval_decided(profile: str, record: DecisionRecord) -> None:
    """An approval request was closed: count it; record how long it waited for a human."""
    attributes = {"profile": profile, "tool": record.tool, "decision": record.decision}
    meter = workflow.metric_meter()
    meter.create_counter("keel.approvals", "Approval requests closed", "{request}").add(
        1, attributes
    )
    if record.requested_at is not None and record.decision != "refused":
        waited = (record.at - record.requested_at).total_seconds()
        meter.create_histogram_float(
            "keel.approval.wait", "Time a tool call waited for a human decision", "s"
        ).record(max(0.0, waited), attributes)
