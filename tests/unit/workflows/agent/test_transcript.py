"""The workflow's transcript: stored content goes by reference, the counts still see it all."""

from __future__ import annotations

from keel.contracts import ChatMessage, ToolCall, message_content_bytes, ref_for
from workflows.agent.transcript import Transcript

ANSWER = "I will look the order up. " * 100


def test_an_offered_answer_is_sent_by_reference_and_still_counted() -> None:
    transcript = Transcript()
    stored = ref_for(message_content_bytes(ChatMessage(role="assistant", content=ANSWER)))
    transcript.offer(stored)
    calls = [ToolCall(id="c1", name="get_order", arguments='{"order_id": "ORD-1"}')]
    transcript.append(ChatMessage(role="assistant", content=ANSWER, tool_calls=calls))

    [sent] = transcript.pending
    assert sent.content_ref == stored and sent.content is None
    assert sent.tool_calls == calls, "the calls stay in the message (the node keeps them)"
    assert transcript.state.messages == 1 and transcript.state.tool_calls == 1
    assert transcript.state.text_bytes == len(ANSWER) + len("get_order") + len(calls[0].arguments)


def test_offers_end_with_the_next_model_call() -> None:
    transcript = Transcript()
    transcript.offer(ref_for(message_content_bytes(ChatMessage(role="user", content="hello"))))
    node = ref_for(b'{"v": 1}')
    transcript.sent(node)
    transcript.append(ChatMessage(role="user", content="hello"))
    assert transcript.prior == node
    assert transcript.pending == [ChatMessage(role="user", content="hello")]


def test_without_a_node_every_message_stays_pending() -> None:
    transcript = Transcript()
    transcript.append(ChatMessage(role="user", content="a"))
    transcript.sent(None)  # a worker without a content store
    transcript.append(ChatMessage(role="assistant", content="b"))
    assert [m.content for m in transcript.pending] == ["a", "b"] and transcript.prior is None


def test_a_lone_surrogate_does_not_break_the_digest() -> None:
    text = "broken \ud800 text"
    stored = ref_for(message_content_bytes(ChatMessage(role="tool", content=text)))
    transcript = Transcript()
    transcript.offer(stored)
    transcript.append(ChatMessage(role="tool", content=text))
    assert transcript.pending[0].content_ref == stored
