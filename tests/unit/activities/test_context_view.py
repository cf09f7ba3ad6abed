"""The model activity applies a context view: what the provider sees stays a valid conversation
(the simulator's OpenAI pairing check is the guard), summary requests are rendered as text."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.context_view import CONTEXT_VIEW_MISMATCH, apply_view
from activities.providers.openai_compat import messages_json
from keel.contracts import ChatMessage, ContextView, ImagePart, SummaryTask, ToolCall
from simulator.summary import is_summary_request, replaced_turns, summarize, summary_calls
from simulator.wire import ChatRequest as WireRequest
from simulator.wire import tool_message_problem


def conversation() -> list[ChatMessage]:
    """system, task, then three tool turns (the second with two calls), then a tool turn."""
    messages = [ChatMessage(role="system", content="sys"), ChatMessage(role="user", content="task")]
    for turn, names in enumerate([["get_order"], ["get_order", "read_page"], ["read_page"]]):
        calls = [ToolCall(id=f"call_{turn}_{i}", name=n, arguments=f'{{"page": {turn}}}')
                 for i, n in enumerate(names)]  # fmt: skip
        messages.append(ChatMessage(role="assistant", content=f"turn {turn}", tool_calls=calls))
        messages += [ChatMessage(role="tool", tool_call_id=c.id, content=f"result {c.id} " * 50,
                                 images=[ImagePart(mime_type="image/png", data="AAAA")])
                     for c in calls]  # fmt: skip
    return messages  # indexes: 2 A, 3 T, 4 A, 5 T, 6 T, 7 A, 8 T


def wire_problem(messages: list[ChatMessage]) -> str | None:
    body = {"model": "sim/x", "messages": messages_json(messages, accepts_images=True)}
    return tool_message_problem(WireRequest.model_validate(body).messages)


def test_without_a_view_the_conversation_is_unchanged() -> None:
    messages = conversation()
    assert apply_view(messages, None) is messages
    assert wire_problem(messages) is None


def test_stubs_replace_tool_contents_and_drop_their_images() -> None:
    view = ContextView(stubs={3: '{"trimmed":"get_order result"}', 5: '{"trimmed":"x"}'})
    shown = apply_view(conversation(), view)
    assert len(shown) == 9
    assert (shown[3].content, shown[3].images, shown[3].tool_call_id) == (
        '{"trimmed":"get_order result"}', [], "call_0_0")  # fmt: skip
    assert shown[6].images, "untrimmed results keep their images"
    assert wire_problem(shown) is None


def test_a_summarized_range_becomes_one_user_message_and_pairing_stays_intact() -> None:
    view = ContextView(summary="[keel:summary turns=2] s", summarized=(2, 7), stubs={8: "stub"})
    shown = apply_view(conversation(), view)
    assert [m.role for m in shown] == ["system", "user", "user", "assistant", "tool"]
    assert shown[2].content == "[keel:summary turns=2] s" and shown[4].content == "stub"
    assert wire_problem(shown) is None
    wire = WireRequest.model_validate({"model": "sim/x", "messages": messages_json(shown, True)})
    assert replaced_turns(wire) == 2


@pytest.mark.parametrize(
    "view",
    [
        ContextView(stubs={2: "an assistant message"}),
        ContextView(summary="s", summarized=(2, 5)),  # would leave message 5 without its call
        ContextView(summary="s", summarized=(2, 40)),
        ContextView(summarized=(2, 4)),
    ],
)
def test_a_view_that_does_not_fit_fails_for_good(view: ContextView) -> None:
    with pytest.raises(ApplicationError) as caught:
        apply_view(conversation(), view)
    assert caught.value.type == CONTEXT_VIEW_MISMATCH and caught.value.non_retryable


def test_a_summary_request_renders_the_range_and_the_simulator_summarizes_it() -> None:
    task = SummaryTask(start=2, end=7, instruction="[keel:summarize] condense")
    view = ContextView(stubs={3: '{"trimmed":"t","order_id":"ORD-1042"}'}, summarize=task)
    system, user = apply_view(conversation(), view)
    assert (system.role, system.content) == ("system", "[keel:summarize] condense")
    text = user.content or ""
    assert text.startswith("Messages 2-6 of the conversation")
    assert "--- message 3: tool result of get_order (call call_0_0) ---" in text
    assert 'call call_1_1: read_page {"page":1}' in text
    assert "--- message 7" not in text
    wire = WireRequest.model_validate(
        {"model": "sim/x", "messages": messages_json([system, user], True)}
    )
    assert is_summary_request(wire)
    summary, last = summarize(wire)
    assert last == 6
    entries = summary_calls("[keel:summary turns=2] x\n" + summary)
    assert [(e["turn"], e["id"], e["name"]) for e in entries] == [
        (1, "call_0_0", "get_order"),
        (2, "call_1_0", "get_order"),
        (2, "call_1_1", "read_page"),
    ]
    assert entries[0]["result"] == {"order_id": "ORD-1042"}, "a stub, as JSON, without its note"
    assert entries[2]["result"].startswith("result call_1_1"), "text stays text"
    assert entries[1]["arguments"] == {"page": 1}
