"""A context budget's view of the conversation: what the model activity leaves out or replaces
before the provider sees the assembled messages (workflows/agent/context.py decides it), and
the small per-message record the workflow keeps so it can decide without reading the store.

The history holds the whole conversation (by reference, keel/runtime/store/transcripts.py);
a view never changes what is stored, only what one request shows the provider.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

SUMMARY_MARKER = "[keel:summary turns={turns}]"
"""How a summary message starts: ``turns`` is the number of assistant messages it replaces, so
a reader that counts turns (the simulator's scripted scenarios) can count them still."""
SUMMARIZE_MARKER = "[keel:summarize]"
"""How the instruction of a summary request starts (a simulated model answers it)."""


class SummaryTask(BaseModel):
    """A request that asks for a summary: the model activity sends ``instruction`` as the
    system message and messages ``start`` up to (not including) ``end``, as the view shows
    them, rendered as text in one user message (activities/context_view.py). No tools."""

    start: int = Field(ge=1)
    end: int = Field(ge=2)
    instruction: str


class ContextView(BaseModel):
    """How the model activity trims the assembled conversation (indexes are positions in the
    whole conversation, 0 = the system prompt).

    ``stubs`` replaces the content of tool messages with a short stub that keeps ids and key
    fields (their images are dropped); ``summary`` replaces messages ``summarized[0]`` up to
    (not including) ``summarized[1]`` with one user message. ``summarize`` makes the request a
    summary request instead (see :class:`SummaryTask`). The workflow computes all of it
    deterministically from what its history holds, so a replay sends the same view.
    """

    stubs: dict[int, str] = Field(default_factory=dict)
    summary: str | None = None
    summarized: tuple[int, int] | None = None
    summarize: SummaryTask | None = None


class CallMeta(BaseModel):
    """A tool call of an assistant message: its id, tool and key arguments (ids and short
    scalars, for the pinned facts of a summary)."""

    id: str
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class MessageMeta(BaseModel):
    """What the workflow keeps of one message for its context budget (small: it is history).

    ``size`` is the message's text in UTF-8 bytes as the prompt estimate counts it
    (workflows/agent/budget.py: content, name, tool-call names and arguments); ``stub`` is
    what replaces a tool message's content when it is trimmed (None: never trimmed, it is
    already about as small); ``ids`` the ids found in a tool result.
    """

    role: Literal["system", "user", "assistant", "tool"]
    size: int = 0
    images: int = 0
    calls: list[CallMeta] = Field(default_factory=list)
    answers: str | None = Field(default=None, description="a tool message: its call's id")
    tool: str | None = Field(default=None, description="a tool message: the tool's name")
    stub: str | None = None
    ids: list[str] = Field(default_factory=list)


class ContextState(BaseModel):
    """A run's context budget as workflow state (in ``ConversationState``, so carried across
    continue-as-new): one ``MessageMeta`` per message, and the view so far. Trimming is
    monotonic: an index in ``trimmed`` stays trimmed, a summary stays until a later one covers
    more, so the prompt's prefix stays stable for the provider's prompt cache."""

    meta: list[MessageMeta] = Field(default_factory=list)
    trimmed: list[int] = Field(default_factory=list)
    summary: str | None = None
    summarized: tuple[int, int] | None = None
    summary_step: int | None = None

    def view(self) -> ContextView | None:
        """The view the next request sends (None: nothing trimmed or summarized yet)."""
        if not self.trimmed and self.summarized is None:
            return None
        start, end = self.summarized or (0, 0)
        stubs = {i: stub for i in self.trimmed
                 if not start <= i < end and (stub := self.meta[i].stub) is not None}  # fmt: skip
        return ContextView(stubs=stubs, summary=self.summary, summarized=self.summarized)

    def removed(self) -> tuple[int, int, int, int]:
        """What the view takes out of the prompt estimate's counts: (messages, text bytes,
        tool calls, images); a summary message counts as one message of its own bytes."""
        messages = size = calls = images = 0
        start, end = self.summarized or (0, 0)
        for meta in self.meta[start:end]:
            messages, size = messages + 1, size + meta.size
            calls, images = calls + len(meta.calls), images + meta.images
        if self.summarized is not None:
            messages, size = messages - 1, size - text_size(self.summary or "")
        for i in self.trimmed:
            meta = self.meta[i]
            if not start <= i < end and meta.stub is not None:
                size += meta.size - text_size(meta.stub)
                images += meta.images
        return messages, size, calls, images


def text_size(text: str) -> int:
    """UTF-8 bytes as the prompt estimate counts them (a lone surrogate must not crash)."""
    return len(text.encode("utf-8", "surrogatepass"))
