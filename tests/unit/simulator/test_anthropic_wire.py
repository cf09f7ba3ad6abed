"""The simulator's Anthropic wire without a server: requests refused as Anthropic refuses them,
turns rendered as messages Keel's provider reads, and the prompt cache billing reads and writes
as Anthropic's and OpenAI's do (over HTTP: tests/integration/test_llm_provider.py,
tests/integration/test_prompt_cache.py)."""

from __future__ import annotations

from typing import Any

import pytest

from activities.providers import caching
from activities.providers.anthropic import parse_response
from activities.providers.anthropic_body import build_body
from keel.contracts import ChatMessage, ChatRequest, ModelSettings, ToolCall, ToolSpec
from simulator.anthropic_check import MessagesRequest, problem
from simulator.anthropic_wire import as_chat, block_chars, message_body, prompt_blocks
from simulator.cache import OPENAI_MIN_TOKENS, PromptCache, tokens
from simulator.scenarios import TurnSpec


def req(messages: list[dict[str, Any]], **extra: Any) -> MessagesRequest:
    return MessagesRequest.model_validate(
        {"model": "sim/x", "max_tokens": 100, "messages": messages, **extra}
    )


def use(*ids: str) -> dict[str, Any]:
    blocks = [{"type": "tool_use", "id": i, "name": "f", "input": {}} for i in ids]
    return {"role": "assistant", "content": blocks}


def results(*ids: str) -> dict[str, Any]:
    blocks = [{"type": "tool_result", "tool_use_id": i, "content": "ok"} for i in ids]
    return {"role": "user", "content": blocks}


USER = {"role": "user", "content": "hi"}


def test_a_valid_conversation_passes() -> None:
    assert problem(req([USER, use("a", "b"), results("b", "a")])) is None


@pytest.mark.parametrize(
    ("messages", "extra", "shown"),
    [([USER, use("a", "b"), results("a")], {}, "without `tool_result` blocks"),
     ([USER, use("a"), results("a", "z")], {}, "unexpected `tool_use_id`"),
     ([USER, use("a")], {}, "without `tool_result` blocks"),
     ([USER, use("a"), {"role": "user", "content": [{"type": "text", "text": "x"},
       *results("a")["content"]]}], {}, "must come before any other content"),
     ([USER, use("bad.id"), results("bad.id")], {}, "should match pattern"),
     ([{"role": "user", "content": "  "}], {}, "non-whitespace"),
     ([{"role": "user", "content": [{"type": "text", "text": ""}]}], {}, "non-empty"),
     ([USER, use("a", "a"), results("a")], {}, "must be unique"),
     ([{"role": "user", "content": [{"type": "text", "text": "x",
                                     "cache_control": {"type": "x"}}]}], {}, "'ephemeral'"),
     ([{"role": "user", "content": [{"type": "text", "text": str(i),
       "cache_control": {"type": "ephemeral"}} for i in range(5)]}], {}, "A maximum of 4"),
     ([USER], {"tools": [{"name": "f", "input_schema": {"type": "array"}}]}, "'object'"),
     ([USER], {"system": [{"type": "image"}]}, "system.0.type")],
)  # fmt: skip
def test_what_anthropic_refuses(messages: list[dict[str, Any]], extra: Any, shown: str) -> None:
    found = problem(req(messages, **extra))
    assert found is not None and shown in found, found


def test_unknown_fields_and_temperatures_above_one_are_refused() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        req([USER], frequency_penalty=1)
    with pytest.raises(ValueError, match="less than or equal to 1"):
        req([USER], temperature=1.5)


def test_the_request_reads_as_the_openai_shape_the_scenarios_know() -> None:
    chat = as_chat(req([USER, use("a", "b"), results("a", "b")], system="Be brief.",
                       tools=[{"name": "f", "input_schema": {"type": "object"}}]))  # fmt: skip
    assert [m.role for m in chat.messages] == ["system", "user", "assistant", "tool", "tool"]
    assert [c["id"] for c in chat.messages[2].tool_calls or []] == ["a", "b"]
    assert (chat.messages[3].model_extra or {})["tool_call_id"] == "a"
    assert chat.tools == [
        {
            "type": "function",
            "function": {"name": "f", "description": "", "parameters": {"type": "object"}},
        }
    ]


def test_a_turn_renders_as_a_message_keels_provider_reads() -> None:
    turn = TurnSpec.model_validate({"content": "Looking.", "tool_calls": [
        {"name": "get_order", "arguments": {"order_id": "ORD-1"}},
        {"name": "get_order", "id": "", "arguments": {"order_id": "ORD-2"}},
        {"name": "get_order", "arguments_raw": '{"order_id": "ORD-'}]})  # fmt: skip
    body = message_body(req([USER]), turn, ("conv", 2, 1), (PromptCache(), 1024))
    assert body["stop_reason"] == "tool_use"
    parsed = parse_response(body, "sim/x")
    assert parsed.content == "Looking." and parsed.finish_reason == "tool_calls"
    assert [(c.id, c.arguments) for c in parsed.tool_calls] == [
        ("toolu_2_0", '{"order_id": "ORD-1"}'), ("", '{"order_id": "ORD-2"}'),
        ("toolu_2_2", '{"order_id": "ORD-')]  # fmt: skip


def test_block_sizes_agree_with_keels_estimate() -> None:
    """Keel places a mark from its own count; the simulator bills from its own: they agree."""
    call = ToolCall(id="c1", name="get_order", arguments='{"order_id": "ORD-1042", "n": "é"}')
    messages = [ChatMessage(role="system", content="Système " * 50),
                ChatMessage(role="user", content="ORD-1042?"),
                ChatMessage(role="assistant", content="Checking.", tool_calls=[call]),
                ChatMessage(role="tool", tool_call_id="c1", content="{'ok': 1}")]  # fmt: skip
    tools = [ToolSpec(server="d", name="get_order", description="An order by id.",
                      input_schema={"type": "object", "properties": {"order_id": {}}})]  # fmt: skip
    model = ModelSettings(name="sim/x", min_cache_tokens=1)
    body = build_body(ChatRequest(model=model, messages=messages, tools=tools, conversation_id="c"))
    blocks = [*body["tools"], *body["system"]] + [b for m in body["messages"] for b in m["content"]]
    assert [block_chars(b) for b in blocks] == [caching.block_chars(b) for b in blocks]
    sim_blocks = prompt_blocks(MessagesRequest.model_validate(body))
    assert [b.marked for b in sim_blocks] == ["cache_control" in b for b in blocks]


def blocks_of(texts: list[str], marks: set[int]) -> MessagesRequest:
    content = [{"type": "text", "text": t, **({"cache_control": {"type": "ephemeral"}}
               if i in marks else {})} for i, t in enumerate(texts)]  # fmt: skip
    return req([{"role": "user", "content": content}])


def test_anthropic_cache_reads_what_an_earlier_request_wrote() -> None:
    now = [0.0]
    cache = PromptCache(clock=lambda: now[0])
    first = prompt_blocks(blocks_of(["a" * 4000, "b" * 400], {1}))
    assert cache.anthropic("m", first, 1000).cache_creation_input_tokens == 1100
    second = prompt_blocks(blocks_of(["a" * 4000, "b" * 400, "c" * 800], {2}))
    billed = cache.anthropic("m", second, 1000)
    assert (billed.cache_read_input_tokens, billed.cache_creation_input_tokens) == (1100, 200)
    assert billed.input_tokens == 0
    assert cache.anthropic("other-model", second, 1000).cache_read_input_tokens == 0
    now[0] += 301  # past the five minutes since the last use: gone
    assert cache.anthropic("m", second, 1000).cache_read_input_tokens == 0


def test_anthropic_cache_ignores_a_mark_below_the_minimum() -> None:
    cache = PromptCache()
    short = prompt_blocks(blocks_of(["a" * 400, "b" * 40], {0, 1}))
    for _ in range(2):
        billed = cache.anthropic("m", short, 1024)
        assert (billed.cache_read_input_tokens, billed.cache_creation_input_tokens) == (0, 0)
        assert billed.input_tokens == tokens(440)


def test_openai_cache_reads_the_longest_seen_prefix_in_steps() -> None:
    cache = PromptCache()
    base = "x" * (OPENAI_MIN_TOKENS * 4 + 1000)
    assert cache.openai("m", base) == 0
    assert cache.openai("m", base + "new question") == OPENAI_MIN_TOKENS + 128
    assert cache.openai("m", "y" + base) == 0  # a different first token: no prefix in common
    assert cache.openai("m", "x" * 100) == 0  # below the minimum: never cached
