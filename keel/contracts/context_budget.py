"""A per-step input-token budget (``[context]``) and how the conversation is kept inside it
(workflows/agent/context.py)."""

from __future__ import annotations

from pydantic import Field

from keel.contracts._base import Strict


class ContextSettings(Strict):
    """Older tool results are trimmed to stubs first; when that is not enough, older turns are
    summarized by the ``[routing] summary`` tier (else ``[model]``). The newest
    ``keep_recent_turns`` tool turns, and facts the run depends on, are never dropped."""

    max_input_tokens: int = Field(ge=256, description="the prompt estimate a step may send")
    keep_recent_turns: int = Field(default=2, ge=0, le=100)
    summarize: bool = Field(default=True, description="summarize when trimming is not enough")
