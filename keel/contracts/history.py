"""A profile's ``[history]`` section: when a run continues as new, and the budget it never
passes (docs/architecture.md, "History budget")."""

from __future__ import annotations

from pydantic import Field, model_validator

from keel.contracts._base import Strict


class HistorySettings(Strict):
    """The history budget of a run (docs/architecture.md, "History budget").

    At a safe point after a tool turn the run continues as new once Temporal suggests it or
    its history reaches ``continue_after_events`` / ``continue_after_bytes``. Before every
    model call, and while it waits for a human, a run whose history would pass
    ``max_events`` / ``max_bytes`` halts (``history_limit``) with a typed result, well before
    Temporal's own limits (51,200 events, 50 MiB) would terminate it.
    """

    continue_as_new: bool = Field(
        default=True, description="continue as new at the threshold (false: halt at the max)"
    )
    continue_after_events: int = Field(
        default=4_000, ge=10, le=40_000, description="history events that trigger continue-as-new"
    )
    continue_after_bytes: int = Field(
        default=4_000_000,
        ge=1_000,
        le=40_000_000,
        description="history bytes that trigger continue-as-new",
    )
    max_events: int = Field(
        default=20_000, ge=10, le=50_000, description="a run never passes this many events"
    )
    max_bytes: int = Field(
        default=20_000_000, ge=1_000, le=50_000_000, description="a run never passes this size"
    )

    @model_validator(mode="after")
    def _continue_before_the_stop(self) -> HistorySettings:
        if not self.continue_as_new:
            return self
        problems = [
            f"continue_after_{what} ({after:,}) must be below max_{what} ({top:,}): a run"
            " continues as new before its history budget stops it"
            for what, after, top in (
                ("events", self.continue_after_events, self.max_events),
                ("bytes", self.continue_after_bytes, self.max_bytes),
            )
            if after >= top
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self
