"""Context budgets, planned: what to trim, what to summarize, what the summary must pin.

Pure and deterministic (no I/O, no clocks): workflows/agent/context.py calls these before
each model step with the conversation's records (``ContextState``), and replays get the same
answers. Rules:

- the prompt estimate is the budget's own (workflows/agent/budget.py), with the view applied;
- over ``max_input_tokens``, tool results are trimmed to their stubs oldest first, never those
  of the newest ``keep_recent_turns`` tool turns (nor the newest turn, not yet read); once
  trimmed, a result stays trimmed (a stable prefix for the provider's prompt cache);
- still over, messages from after the task up to the first kept turn are summarized: the range
  ends at a turn boundary (an assistant message with its tool messages is never split), and
  a later summary covers the earlier one's range and more;
- the summary message lists pinned facts that Keel, not the summarizer, writes: the actions
  the run executed (a write, or a call a human approved) and the ids later calls used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from keel.contracts import (
    SUMMARIZE_MARKER,
    SUMMARY_MARKER,
    ContextSettings,
    ContextState,
    ConversationState,
    MessageMeta,
    StepRecord,
    ToolSpec,
)
from keel.contracts.context_view import text_size
from workflows.agent.budget import BYTES_PER_TOKEN, estimate_prompt_tokens
from workflows.agent.context_meta import ID_PATTERN

# What rendering a message for a summary request adds (activities/context_view.py): the
# header line, plus the tool and call id of a tool message; a line per tool call.
RENDERED_MESSAGE_BYTES = 64
RENDERED_CALL_BYTES = 16
SUMMARY_BYTES_PER_TOKEN = 4  # an upper bound for the text a summary's tokens make
MAX_PINNED_IDS = 40


@dataclass(frozen=True)
class TrimPlan:
    """The state after trimming, what was newly trimmed, the estimate, and where the kept
    turns begin (the first index neither trimmed nor summarized)."""

    state: ContextState
    trimmed: list[int]
    tokens: int
    kept_from: int


def estimate(conversation: ConversationState, context: ContextState, tools: list[ToolSpec]) -> int:
    """The prompt estimate of the next step were ``context`` its view."""
    return estimate_prompt_tokens(conversation.model_copy(update={"context": context}), tools)


def kept_from(meta: list[MessageMeta], keep: int) -> int:
    """The first message of the newest ``keep`` tool turns (at least the newest turn)."""
    turns = [i for i, m in enumerate(meta) if m.role == "assistant" and m.calls]
    if not turns:
        return len(meta)
    return turns[-min(max(keep, 1), len(turns))]


def plan_trim(
    conversation: ConversationState, settings: ContextSettings, tools: list[ToolSpec]
) -> TrimPlan:
    """Trim tool results, oldest first, until the estimate fits (or nothing more can go)."""
    context = conversation.context
    assert context is not None
    state = context.model_copy(deep=True)
    boundary = kept_from(state.meta, settings.keep_recent_turns)
    tokens = estimate(conversation, state, tools)
    start, end = state.summarized or (0, 0)
    done = set(state.trimmed)
    newly: list[int] = []
    count, size, calls, images = _counts(conversation, state)
    for index, meta in enumerate(state.meta[:boundary]):
        if tokens <= settings.max_input_tokens:
            break
        if meta.stub is None or index in done or start <= index < end:
            continue
        newly.append(index)
        size -= meta.size - text_size(meta.stub)
        images -= meta.images
        tokens = estimate_prompt_tokens(
            ConversationState(messages=count, text_bytes=size, tool_calls=calls, images=images),
            tools,
        )
    state.trimmed = sorted(done | set(newly))
    return TrimPlan(state, newly, tokens, boundary)


def _counts(conversation: ConversationState, state: ContextState) -> tuple[int, int, int, int]:
    gone = state.removed()
    return (conversation.messages - gone[0], conversation.text_bytes - gone[1],
            conversation.tool_calls - gone[2], conversation.images - gone[3])  # fmt: skip


def summary_range(meta: list[MessageMeta], state: ContextState, end: int) -> tuple[int, int] | None:
    """Messages to summarize: from after the task (the first user message) up to ``end``, a
    turn boundary; None when that covers no turn beyond what is summarized already."""
    start = 2 if len(meta) > 1 and meta[1].role == "user" else 1
    if state.summarized is not None:
        start = state.summarized[0]
    done = state.summarized[1] if state.summarized else start
    if end <= done or not any(m.role == "assistant" for m in meta[done:end]):
        return None
    return start, end


def viewed_bytes(state: ContextState, start: int, end: int) -> int:
    """Bytes of messages ``start``..``end`` as the view shows them (summary included)."""
    total = 0
    lo, hi = state.summarized or (0, 0)
    trimmed = set(state.trimmed)
    for index in range(start, end):
        meta = state.meta[index]
        if lo <= index < hi:
            total += text_size(state.summary or "") if index == lo else 0
        elif index in trimmed and meta.stub is not None:
            total += text_size(meta.stub)
        else:
            total += meta.size
    return total


def request_bytes(state: ContextState, start: int, end: int, instruction: str) -> int:
    """An upper estimate of a summary request's text: the instruction and the rendering of
    the range (headers, call lines) as activities/context_view.py writes it."""
    framing = sum(
        RENDERED_MESSAGE_BYTES + len(m.tool or "") + len(m.answers or "")
        + sum(RENDERED_CALL_BYTES + len(c.id) for c in m.calls)
        for m in state.meta[start:end]
    )  # fmt: skip
    return text_size(instruction) + viewed_bytes(state, start, end) + framing


def worth_summarizing(state: ContextState, start: int, end: int, fixed: str, tokens: int) -> bool:
    """Whether a summary of at most ``tokens`` tokens (and ``fixed``: its header and pinned
    facts) cannot make the prompt longer than the messages it replaces."""
    most = text_size(fixed) + tokens * SUMMARY_BYTES_PER_TOKEN
    return viewed_bytes(state, start, end) > most + BYTES_PER_TOKEN


def turns_in(meta: list[MessageMeta], start: int, end: int) -> int:
    """Assistant messages in the range: the turns a summary of it replaces."""
    return sum(1 for m in meta[start:end] if m.role == "assistant")


def pinned_facts(
    meta: list[MessageMeta], start: int, end: int, steps: list[StepRecord],
    is_write: Callable[[str], bool],
) -> list[str]:  # fmt: skip
    """The facts a summary of ``start``..``end`` lists as Keel wrote them: each action executed
    in the range (a write, or a call a human approved) with its key arguments, then the ids
    the range's calls used and the ids of its results that any later call used."""
    records = [s for s in steps if s.kind == "tool" and s.outcome == "ok"]
    seen: dict[str, int] = {}
    lines: list[str] = []
    for index, message in enumerate(meta[:end]):
        for call in message.calls:
            nth = seen[call.id] = seen.get(call.id, 0) + 1
            record = _nth(records, call.id, nth)
            if index < start or record is None:
                continue
            approved = _approval(record.validation or "")
            if not approved and not is_write(call.name):
                continue
            args = ", ".join(f"{k}={v}" for k, v in call.args.items())
            lines.append(f"- executed {call.name}({args}) at step {record.step}"
                         f" (call {call.id}){approved}")  # fmt: skip
    ids = _pinned_ids(meta, start, end)
    if ids:
        lines.append("- ids the run works with: " + ", ".join(ids))
    return lines


def _nth(records: list[StepRecord], call_id: str, nth: int) -> StepRecord | None:
    matching = [r for r in records if r.tool_call_id == call_id]
    return matching[nth - 1] if len(matching) >= nth else None


def _approval(validation: str) -> str:
    for word in ("approved by", "edited by"):
        at = validation.find(word)
        if at >= 0:
            return f", {validation[at:]}"
    return ""


def _pinned_ids(meta: list[MessageMeta], start: int, end: int) -> list[str]:
    used_in_range: dict[str, None] = {}
    used_later: set[str] = set()
    for index, message in enumerate(meta):
        for call in message.calls:
            ids = [str(v) for v in call.args.values() if ID_PATTERN.fullmatch(str(v))]
            if start <= index < end:
                used_in_range.update(dict.fromkeys(ids))
            used_later.update(ids)
    found = dict(used_in_range)
    for message in meta[start:end]:
        found.update(dict.fromkeys(i for i in message.ids if i in used_later))
    return list(found)[:MAX_PINNED_IDS]


def summary_header(turns: int, start: int, end: int, step: int) -> str:
    """The summary message's first lines; the marker says how many turns it replaces."""
    return (
        f"{SUMMARY_MARKER.format(turns=turns)} Messages {start}-{end - 1} of this conversation"
        f" ({turns} turns) were summarized at step {step} to fit the context budget; the run"
        " keeps them whole in its history."
    )


def summary_message(header: str, text: str, pinned: list[str]) -> str:
    """The user message that replaces the summarized range."""
    parts = [header, "Summary:", text.strip()]
    if pinned:
        parts += ["Pinned facts (kept by Keel, not summarized):", *pinned]
    return "\n".join(parts)


def summary_instruction(tokens: int) -> str:
    """The system message of a summary request (the simulator recognizes its marker)."""
    words = max(tokens * 3 // 4, 32)
    return (
        f"{SUMMARIZE_MARKER} You condense the earlier part of an AI agent's conversation so the"
        " agent can go on without it. Keep every id (orders, customers, tickets, articles),"
        " amount, status, decision and open question; say which tools were called with what"
        " and what they returned; add nothing that is not in the messages. Answer with the"
        f" summary only, at most {words} words."
    )


def spans(indexes: list[int]) -> str:
    """``[3, 5, 6, 7, 9]`` as ``3, 5-7, 9``."""
    parts: list[tuple[int, int]] = []
    for index in sorted(indexes):
        if parts and parts[-1][1] == index - 1:
            parts[-1] = (parts[-1][0], index)
        else:
            parts.append((index, index))
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in parts)
