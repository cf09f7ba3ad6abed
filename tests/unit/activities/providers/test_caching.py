"""Where the cache breakpoints go: the tool catalog, the system prompt, the end of the previous
request and the end of this one, each only when the prefix it closes reaches the model's
minimum; none with ``prompt_cache = false`` (on the real stack:
tests/integration/test_prompt_cache.py)."""

from __future__ import annotations

from typing import Any

import pytest

from activities.providers.anthropic_body import build_body
from activities.providers.caching import (
    CHARS_PER_TOKEN,
    DEFAULT_MIN_CACHE_TOKENS,
    MAX_BREAKPOINTS,
    block_chars,
    min_cache_tokens,
)
from keel.contracts import ChatMessage, ChatRequest, ModelSettings, ToolCall, ToolSpec

TOOLS = [
    ToolSpec(server="desk", name=f"tool_{n}", description="d" * 1500,
             input_schema={"type": "object"})
    for n in range(3)
]  # fmt: skip
SYSTEM = ChatMessage(role="system", content="Policy. " * 400)  # 3,200 characters


def turn(step: int) -> list[ChatMessage]:
    call = ToolCall(id=f"keel-{step}-0", name="tool_0", arguments=f'{{"page": {step}}}')
    return [
        ChatMessage(role="assistant", tool_calls=[call]),
        ChatMessage(role="tool", tool_call_id=call.id, content="result " * 100),
    ]


def conversation(steps: int) -> list[ChatMessage]:
    messages = [SYSTEM, ChatMessage(role="user", content="Do the task.")]
    for step in range(1, steps + 1):
        messages += turn(step)
    return messages


def body(messages: list[ChatMessage], **model: Any) -> dict[str, Any]:
    settings = ModelSettings(name="claude-sonnet-4-5", provider="anthropic", **model)
    return build_body(ChatRequest(model=settings, messages=messages, tools=TOOLS,
                                  conversation_id="c"))  # fmt: skip


def marks(data: dict[str, Any]) -> list[tuple[str, int, int]]:
    """Where the marks are: (section, message index or -1, block index), in prompt order."""
    found = [("tools", -1, i) for i, t in enumerate(data["tools"]) if "cache_control" in t]
    found += [("system", -1, i) for i, b in enumerate(data["system"]) if "cache_control" in b]
    for m, message in enumerate(data["messages"]):
        found += [("messages", m, i) for i, b in enumerate(message["content"])
                  if "cache_control" in b]  # fmt: skip
    return found


def prefix_chars(data: dict[str, Any], where: tuple[str, int, int]) -> int:
    blocks = [*data["tools"], *data["system"]]
    stop = len(data["tools"]) + where[2] if where[0] == "system" else where[2]
    if where[0] == "messages":
        for message in data["messages"][: where[1]]:
            blocks += message["content"]
        stop = len(blocks) + where[2]
        blocks += data["messages"][where[1]]["content"]
    return sum(block_chars(b) for b in blocks[: stop + 1])


def test_minimums_follow_anthropics_table_and_the_profile_overrides_them() -> None:
    def of(name: str, **extra: Any) -> int:
        return min_cache_tokens(ModelSettings(name=name, **extra))

    assert of("claude-sonnet-4-5-20250929") == 1024
    assert of("claude-opus-4-20250514") == 1024
    assert of("claude-opus-4-5") == 4096 and of("claude-haiku-4.5") == 4096
    assert of("claude-3-5-haiku-20241022") == 2048 and of("claude-sonnet-4-6") == 2048
    assert of("anthropic.claude-3-haiku-20240307-v1:0") == 2048
    assert of("sim/support_demo", price_as="claude-haiku-4-5") == 4096
    assert of("some-proxy-model") == DEFAULT_MIN_CACHE_TOKENS
    assert of("claude-haiku-4-5", min_cache_tokens=50) == 50


def test_a_run_marks_tools_system_previous_request_and_last_block() -> None:
    data = body(conversation(2))
    found = marks(data)
    assert found == [
        ("tools", -1, 2),
        ("system", -1, 0),
        ("messages", 2, 0),  # the tool result ending the previous request
        ("messages", 4, 0),  # the tool result ending this one
    ]
    assert len(found) <= MAX_BREAKPOINTS


def test_the_previous_mark_is_where_the_last_mark_of_the_previous_request_was() -> None:
    before, after = body(conversation(1)), body(conversation(2))
    assert marks(before)[-1] == ("messages", 2, 0)
    assert ("messages", 2, 0) in marks(after)
    assert prefix_chars(before, ("messages", 2, 0)) == prefix_chars(after, ("messages", 2, 0))


def test_no_mark_closes_a_prefix_below_the_minimum() -> None:
    for minimum in (100, 400, 1024, 1200, 1500, 2500, 4096):
        data = body(conversation(3), min_cache_tokens=minimum)
        for where in marks(data):
            assert prefix_chars(data, where) // CHARS_PER_TOKEN >= minimum
    small = body(conversation(3), min_cache_tokens=1200)
    assert ("tools", -1, 2) not in marks(small) and marks(small)  # tools alone are too short


@pytest.mark.parametrize("model", [{"prompt_cache": False}, {"min_cache_tokens": 100_000}])
def test_no_marks_when_caching_is_off_or_nothing_reaches_the_minimum(model: Any) -> None:
    assert marks(body(conversation(3), **model)) == []


def test_the_first_request_marks_the_task_as_the_end_of_the_prefix() -> None:
    data = body(conversation(0))
    assert marks(data)[-1] == ("messages", 0, 0)
    assert data["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
