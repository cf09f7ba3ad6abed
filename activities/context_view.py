"""A context budget's view, applied to the assembled conversation before the provider sees it.

``ChatRequest.view`` (decided by workflows/agent/context.py) names messages by their position
in the whole conversation. :func:`apply_view` replaces trimmed tool messages' content with
their stubs (their images dropped) and the summarized range with one user message; what is
left is still a valid conversation: a range ends at a turn boundary and a stub keeps its
message (role, ``tool_call_id``), so every tool call keeps its tool message. A summary
request (``view.summarize``) becomes two messages instead: the summary instruction and the
range, as the view shows it, rendered as text (:func:`render`) — a provider-neutral shape
with no tool pairing to keep. A view that does not fit the conversation is the workflow's
bug and fails the call for good (``ContextViewMismatch``).
"""

from __future__ import annotations

import json

from temporalio.exceptions import ApplicationError

from keel.contracts import ChatMessage, ContextView

CONTEXT_VIEW_MISMATCH = "ContextViewMismatch"
"""The request's view names messages the conversation does not have (not retried)."""


def apply_view(messages: list[ChatMessage], view: ContextView | None) -> list[ChatMessage]:
    """``messages`` as ``view`` shows them (unchanged without a view)."""
    if view is None:
        return messages
    _check(messages, view)
    shown = [message for _, message in viewed(messages, view)]
    task = view.summarize
    if task is None:
        return shown
    items = [(i, m) for i, m in viewed(messages, view) if task.start <= i < task.end]
    return [
        ChatMessage(role="system", content=task.instruction),
        ChatMessage(role="user", content=render(items, tool_names(messages))),
    ]


def viewed(messages: list[ChatMessage], view: ContextView) -> list[tuple[int, ChatMessage]]:
    """(position in the whole conversation, message as shown): the summary message stands at
    its range's first position."""
    start, end = view.summarized or (0, 0)
    shown: list[tuple[int, ChatMessage]] = []
    for index, message in enumerate(messages):
        if start <= index < end:
            if index == start:
                shown.append((index, ChatMessage(role="user", content=view.summary or "")))
            continue
        stub = view.stubs.get(index)
        if stub is not None:
            message = message.model_copy(update={"content": stub, "images": []})
        shown.append((index, message))
    return shown


def tool_names(messages: list[ChatMessage]) -> dict[str, str]:
    """Tool-call id → tool name, from the assistant messages' calls."""
    return {call.id: call.name for m in messages for call in m.tool_calls}


def render(items: list[tuple[int, ChatMessage]], names: dict[str, str]) -> str:
    """Messages as text for a summary request: a header line per message
    (``--- message 4: tool result of get_order (call call_1_0) ---``), its content, and one
    line per tool call (``call <id>: <tool> <arguments JSON>``). The simulator reads it back
    (simulator/summary.py); the workflow's size estimate counts the same framing
    (workflows/agent/context_plan.py ``request_bytes``)."""
    if not items:
        return "(no messages)"
    first, last = items[0][0], items[-1][0]
    lines = [f"Messages {first}-{last} of the conversation, oldest first:"]
    for index, message in items:
        if message.role == "tool":
            call = message.tool_call_id or "?"
            what = f"tool result of {names.get(call, 'a tool')} (call {call})"
        else:
            what = message.role
        lines.append(f"--- message {index}: {what} ---")
        if message.content:
            lines.append(message.content)
        lines += [f"call {c.id}: {c.name} {_one_line(c.arguments)}" for c in message.tool_calls]
    return "\n".join(lines)


def _one_line(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        return arguments.replace("\n", " ")


def _check(messages: list[ChatMessage], view: ContextView) -> None:
    problems = [
        f"message {i} is not a tool result"
        for i in view.stubs
        if not 0 <= i < len(messages) or messages[i].role != "tool"
    ]
    for name, span in (("summarized", view.summarized),
                       ("summarize", (view.summarize.start, view.summarize.end)
                        if view.summarize else None)):  # fmt: skip
        if span is not None and not (1 <= span[0] < span[1] <= len(messages)):
            problems.append(f"{name} {span} is outside the {len(messages)} messages")
        elif span is not None and span[1] < len(messages) and messages[span[1]].role == "tool":
            problems.append(f"{name} {span} splits a tool call from its result")
    if view.summarized is not None and view.summary is None:
        problems.append("summarized without a summary")
    if problems:
        raise ApplicationError(
            "the request's context view does not fit its conversation: " + "; ".join(problems),
            type=CONTEXT_VIEW_MISMATCH,
            non_retryable=True,
        )
