"""The Anthropic Messages body built from Keel's conversation: system blocks, parallel
``tool_use`` blocks, one user turn of ``tool_result`` blocks, images inside the results for
models that accept them, ids Anthropic accepts, and arguments that are not an object (the
breakpoints: tests/unit/activities/providers/test_caching.py)."""

from __future__ import annotations

import re

from activities.providers.anthropic_body import UNPARSED, build_body, messages_json, wire_id
from keel.contracts import ChatMessage, ChatRequest, ImagePart, ModelSettings, ToolCall, ToolSpec

IMAGE = ImagePart(mime_type="image/png", data="iVBORw0KGgo=")
CONVERSATION = [
    ChatMessage(role="system", content="You are a support agent."),
    ChatMessage(role="user", content="Show me the chart."),
    ChatMessage(
        role="assistant",
        content="Looking.",
        tool_calls=[
            ToolCall(id="c1", name="chart", arguments='{"q": 3}'),
            ToolCall(id="c2", name="stats"),
        ],
    ),
    ChatMessage(role="tool", tool_call_id="c1", content="[image/png, 8 B]", images=[IMAGE]),
    ChatMessage(role="tool", tool_call_id="c2", content='{"n":3}'),
]


def test_system_goes_top_level_and_parallel_calls_stay_one_turn() -> None:
    system, messages = messages_json(CONVERSATION, accepts_images=False)
    assert system == [{"type": "text", "text": "You are a support agent."}]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "c1", "name": "chart", "input": {"q": 3}},
        {"type": "tool_use", "id": "c2", "name": "stats", "input": {}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "[image/png, 8 B]"},
        {"type": "tool_result", "tool_use_id": "c2", "content": '{"n":3}'},
    ]


def test_images_go_inside_the_tool_result_for_a_model_that_accepts_them() -> None:
    _, messages = messages_json(CONVERSATION, accepts_images=True)
    result = messages[2]["content"][0]
    assert result["content"] == [
        {"type": "text", "text": "[image/png, 8 B]"},
        {"type": "image",
         "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    ]  # fmt: skip


def test_a_user_message_after_tool_results_joins_their_turn_after_them() -> None:
    note = ChatMessage(role="user", content="A supervisor says: hurry.")
    _, messages = messages_json([*CONVERSATION, note], accepts_images=False)
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    kinds = [b["type"] for b in messages[2]["content"]]
    assert kinds == ["tool_result", "tool_result", "text"]


def test_empty_text_is_never_sent() -> None:
    conversation = [
        ChatMessage(role="user", content="   "),
        ChatMessage(role="assistant", content=""),
        ChatMessage(role="user", content="again"),
    ]
    _, messages = messages_json(conversation, accepts_images=False)
    texts = [b["text"] for m in messages for b in m["content"]]
    assert all(t.strip() for t in texts) and texts[2] == "again"


def test_arguments_that_are_not_an_object_are_sent_as_their_text() -> None:
    calls = [ToolCall(id="c1", name="get_order", arguments='{"order_id": "ORD-10'),
             ToolCall(id="c2", name="get_order", arguments="[1, 2]")]  # fmt: skip
    _, messages = messages_json([ChatMessage(role="assistant", tool_calls=calls)], False)
    inputs = [b["input"] for b in messages[0]["content"]]
    assert inputs == [{UNPARSED: '{"order_id": "ORD-10'}, {UNPARSED: "[1, 2]"}]


def test_keel_ids_fit_and_foreign_ids_are_mapped_the_same_way_for_call_and_result() -> None:
    for kept in ("keel-3-0", "keel-3-0-2", "toolu_01AbC", "call_0_1"):
        assert wire_id(kept) == kept
    foreign = "functions.get_order:0"
    mapped = wire_id(foreign)
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", mapped) and mapped == wire_id(foreign)
    assert mapped != wire_id("functions.get_order:1")
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", wire_id(""))
    conversation = [
        ChatMessage(role="assistant", tool_calls=[ToolCall(id=foreign, name="get_order")]),
        ChatMessage(role="tool", tool_call_id=foreign, content="ok"),
    ]
    _, messages = messages_json(conversation, accepts_images=False)
    assert messages[0]["content"][0]["id"] == messages[1]["content"][0]["tool_use_id"] == mapped


def test_the_body_names_model_cap_tools_and_a_temperature_anthropic_accepts() -> None:
    model = ModelSettings(name="claude-haiku-4-5", temperature=1.5, max_output_tokens=300)
    tool = ToolSpec(server="desk", name="get_order", description="An order.",
                    input_schema={"type": "object", "properties": {}})  # fmt: skip
    body = build_body(ChatRequest(model=model, messages=CONVERSATION, tools=[tool],
                                  conversation_id="c", max_output_tokens=200))  # fmt: skip
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("claude-haiku-4-5", 200, 1)
    assert body["tools"] == [{"name": "get_order", "description": "An order.",
                              "input_schema": {"type": "object", "properties": {}}}]  # fmt: skip
    assert body["tool_choice"] == {"type": "auto"}
    assert "cache_control" not in str(body)  # a short prompt: below Haiku 4.5's minimum
