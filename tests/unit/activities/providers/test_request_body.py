"""Images of tool results on the wire: after the run of tool messages, in one user message, for
models that accept images; left out (the tool text names them) for the others."""

from __future__ import annotations

from activities.providers.openai_compat import messages_json
from keel.contracts import ChatMessage, ImagePart, ToolCall

IMAGE = ImagePart(mime_type="image/png", data="iVBORw0KGgo=")
CONVERSATION = [
    ChatMessage(role="user", content="Show me the chart."),
    ChatMessage(
        role="assistant",
        tool_calls=[ToolCall(id="c1", name="chart"), ToolCall(id="c2", name="stats")],
    ),
    ChatMessage(role="tool", tool_call_id="c1", content="[image/png, 8 B]", images=[IMAGE]),
    ChatMessage(role="tool", tool_call_id="c2", content='{"n":3}'),
    ChatMessage(role="assistant", content="Here it is."),
]


def test_images_follow_the_tool_messages_for_a_model_that_accepts_them() -> None:
    wire = messages_json(CONVERSATION, accepts_images=True)
    assert [m["role"] for m in wire] == ["user", "assistant", "tool", "tool", "user", "assistant"]
    assert wire[2] == {"role": "tool", "content": "[image/png, 8 B]", "tool_call_id": "c1"}
    assert wire[4]["content"] == [
        {"type": "text", "text": "Images returned by tool call(s) c1 (1), in order:"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]


def test_images_at_the_end_of_the_conversation_are_sent_too() -> None:
    wire = messages_json(CONVERSATION[:4], accepts_images=True)
    assert [m["role"] for m in wire] == ["user", "assistant", "tool", "tool", "user"]


def test_a_model_without_images_gets_only_the_marker() -> None:
    wire = messages_json(CONVERSATION, accepts_images=False)
    assert [m["role"] for m in wire] == ["user", "assistant", "tool", "tool", "assistant"]
    assert "image_url" not in str(wire)
