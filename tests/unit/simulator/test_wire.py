"""The simulator's wire format where scenarios script what real servers get wrong: tool-call
ids repeated or omitted, and conversations whose tool messages do not answer their calls
(refused with a 400, as OpenAI does). Keel's provider reads the answer as it reads OpenAI's."""

from __future__ import annotations

from typing import Any

from activities.providers.openai_compat import parse_response
from simulator.scenarios import TurnSpec
from simulator.wire import ChatRequest, completion_body, tool_message_problem

TURN = TurnSpec.model_validate(
    {
        "tool_calls": [
            {"name": "refund_order", "id": "call_dup", "arguments": {"order_id": "ORD-1040"}},
            {"name": "refund_order", "id": "call_dup", "arguments": {"order_id": "ORD-1053"}},
            {"name": "get_order", "id": "", "arguments": {"order_id": "ORD-1053"}},
            {"name": "get_order", "arguments": {"order_id": "ORD-1040"}},
        ]
    }
)


def chat(*messages: dict[str, Any]) -> ChatRequest:
    return ChatRequest.model_validate({"model": "sim/x", "messages": list(messages)})


def test_scripted_ids_are_sent_repeated_omitted_or_by_default() -> None:
    body = completion_body(chat({"role": "user", "content": "hi"}), TURN, "conv", 2, 1)
    calls = body["choices"][0]["message"]["tool_calls"]
    assert [call.get("id") for call in calls] == ["call_dup", "call_dup", None, "call_2_3"]
    assert "id" not in calls[2]  # omitted, not null
    parsed = parse_response(body, "sim/x")
    assert [call.id for call in parsed.tool_calls] == ["call_dup", "call_dup", "", "call_2_3"]


def test_tool_messages_must_answer_the_calls_before_them() -> None:
    def assistant(*ids: str) -> dict[str, Any]:
        calls = [{"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}}
                 for i in ids]  # fmt: skip
        return {"role": "assistant", "content": None, "tool_calls": calls}

    def tool(call_id: str) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": call_id, "content": "{}"}

    user = {"role": "user", "content": "hi"}
    assert (
        tool_message_problem(chat(user, assistant("a", "b"), tool("b"), tool("a")).messages) is None
    )
    assert (
        tool_message_problem(chat(user, assistant("a", "a"), tool("a"), tool("a")).messages) is None
    )
    unanswered = tool_message_problem(chat(user, assistant("a", "b"), tool("a"), user).messages)
    assert unanswered and unanswered.endswith("did not have response messages: b")
    stranger = tool_message_problem(chat(user, assistant("a"), tool("x")).messages)
    assert stranger and "tool_call_id 'x'" in stranger
    assert tool_message_problem(chat(user, tool("a")).messages) is not None
    assert tool_message_problem(chat(user, assistant("a")).messages) is not None
