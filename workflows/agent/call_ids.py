"""Tool-call ids the run can rely on: unique within their turn, never empty.

Some OpenAI-compatible servers omit a tool call's id or repeat one within a turn. Everything
downstream is keyed by it — the tool message that answers the call, the approval id
(``apr-<step>-<id>``), the idempotency key (``<workflow_id>:<step>:<id>``) — so two calls with
one id would share an approval request and a key, and the human could approve a call they
never saw. Before the assistant message enters the conversation, a missing or repeated id is
renamed deterministically: ``keel-<step>-<position>`` (position in the turn, 0-based), with a
``-<n>`` suffix in the unlikely case that clashes with another id of the turn. The first call
that uses an id keeps it. The assistant message and the tool messages then carry the same,
unique ids, and every renaming is recorded (step record ``model_tool_call_id``, log event
``tool.call_renamed``).
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import ToolCall

# Histories recorded before ids were made unique replay with the model's ids as they were.
UNIQUE_IDS_PATCH = "unique-tool-call-ids"


@dataclass(frozen=True)
class Renamed:
    """One call whose id was replaced: its position in the turn, the model's id, the new one."""

    position: int
    original: str
    id: str


def unique_ids(step: int, calls: list[ToolCall]) -> tuple[list[ToolCall], list[Renamed]]:
    """The turn's calls with unique, non-empty ids, and what was renamed (pure)."""
    taken = {call.id for call in calls if call.id.strip()}
    kept: set[str] = set()
    out: list[ToolCall] = []
    renamed: list[Renamed] = []
    for position, call in enumerate(calls):
        if call.id.strip() and call.id not in kept:
            kept.add(call.id)
            out.append(call)
            continue
        new_id = f"keel-{step}-{position}"
        suffix = 1
        while new_id in taken:
            suffix += 1
            new_id = f"keel-{step}-{position}-{suffix}"
        taken.add(new_id)
        out.append(call.model_copy(update={"id": new_id}))
        renamed.append(Renamed(position, call.id, new_id))
    return out, renamed


def with_unique_ids(step: int, calls: list[ToolCall]) -> tuple[list[ToolCall], list[Renamed]]:
    """:func:`unique_ids` in a workflow: a turn that needs no renaming is left as it is (no
    patch marker); one that does is renamed, except when replaying an older history."""
    unique, renamed = unique_ids(step, calls)
    if not renamed or (workflow.in_workflow() and not workflow.patched(UNIQUE_IDS_PATCH)):
        return calls, []
    return unique, renamed
