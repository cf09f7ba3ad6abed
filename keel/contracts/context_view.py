"""A context budget's view of the conversation: what the model activity leaves out or replaces
before the provider sees the assembled messages (workflows/agent/context.py decides it)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ContextView(BaseModel):
    """How the model activity trims the assembled conversation (indexes are positions in the
    whole conversation, 0 = the system prompt).

    ``stubs`` replaces the content of tool messages with a short stub that keeps ids and key
    fields; ``summary`` replaces messages ``summarized[0]`` up to (not including)
    ``summarized[1]`` with one user message. The workflow computes both deterministically from
    what its history holds, so a replay sends the same view.
    """

    stubs: dict[int, str] = Field(default_factory=dict)
    summary: str | None = None
    summarized: tuple[int, int] | None = None
