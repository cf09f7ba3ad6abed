"""The activity-side metric instruments, shared by the model-call and tool-call observers."""

from __future__ import annotations

from keel.runtime.telemetry import Telemetry

# Bucket boundaries the GenAI semantic conventions advise for their two client histograms.
TOKEN_BUCKETS = [4.0**i for i in range(14)]  # 1, 4, 16, … 67108864
DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]  # 0.01, 0.02, … 81.92 s


class Instruments:
    """The activity-side metric instruments (creating one twice returns the same one)."""

    def __init__(self, telemetry: Telemetry) -> None:
        meter = telemetry.meter
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.cost = meter.create_counter(
            "keel.llm.cost", unit="USD", description="Model spend, by model and provider."
        )
        self.tool_calls = meter.create_counter(
            "keel.tool.calls", unit="{call}", description="Tool call attempts, by outcome."
        )
        self.tool_duration = meter.create_histogram(
            "keel.tool.duration",
            unit="s",
            description="Duration of one tool call attempt.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.retries = meter.create_counter(
            "keel.retries",
            unit="{attempt}",
            description="Activity attempts after the first, by kind (model or tool).",
        )
