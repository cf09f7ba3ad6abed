"""A per-step input-token budget (``[context]``) and how the conversation is kept inside it
(workflows/agent/context.py; docs/operations.md, "Context budgets")."""

from __future__ import annotations

from pydantic import Field

from keel.contracts._base import Strict


class ContextSettings(Strict):
    """Older tool results are trimmed to stubs first; when that is not enough, older turns are
    summarized by the ``[routing] summary`` tier (else ``[model]``). The newest
    ``keep_recent_turns`` tool turns, and facts the run depends on, are never dropped.

    The budget is on the prompt *estimate* (workflows/agent/budget.py, an upper estimate):
    a step whose estimate, with the view applied, is at most ``max_input_tokens`` is sent as
    it is. The newest tool turn is always shown whole (the model has not read it yet), so
    ``keep_recent_turns = 0`` behaves like 1.
    """

    max_input_tokens: int = Field(ge=256, description="the prompt estimate a step may send")
    keep_recent_turns: int = Field(default=2, ge=0, le=100)
    summarize: bool = Field(default=True, description="summarize when trimming is not enough")
    summary_tokens: int = Field(
        default=512, ge=64, le=16_000, description="the output cap of a summary step"
    )
