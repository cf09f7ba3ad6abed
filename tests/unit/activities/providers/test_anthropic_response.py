"""Parsing a Messages body: text and parallel tool uses, stop reasons as finish reasons, usage
with cache reads and writes added up to the whole prompt, and one readable non-retryable
``model_error`` for what is not a message (over real HTTP:
tests/integration/test_llm_provider.py)."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.providers.anthropic import parse_response
from activities.providers.openai_compat import MAX_USAGE_TOKENS
from keel.contracts import Price, Usage, call_cost
from workflows.failures import classify


def message(content: Any, usage: Any = None, stop: Any = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": content,
        "stop_reason": stop,
        "usage": usage if usage is not None else {"input_tokens": 3, "output_tokens": 2},
    }


def refused(data: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        parse_response(data, "m")
    error = info.value
    assert error.non_retryable is True
    assert classify(error, "model")[0] == "model_error"
    assert "\n" not in error.message
    return error


def test_text_and_parallel_tool_uses() -> None:
    content = [
        {"type": "text", "text": "Looking "},
        {"type": "text", "text": "it up."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_order", "input": {"order_id": "O-1"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_customer", "input": {}},
        {"type": "thinking", "thinking": "not for the run"},
    ]
    response = parse_response(message(content, stop="tool_use"), "m")
    assert response.content == "Looking it up."
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("toolu_1", "get_order", '{"order_id": "O-1"}'),
        ("toolu_2", "get_customer", "{}"),
    ]
    assert (response.finish_reason, response.model) == ("tool_calls", "claude-sonnet-4-5")


@pytest.mark.parametrize(
    ("stop", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("tool_use", "tool_calls"),
     ("max_tokens", "length"), ("refusal", "content_filter"), ("pause_turn", "pause_turn"),
     ("something_new", "something_new"), (None, None)],
)  # fmt: skip
def test_stop_reasons_become_finish_reasons(stop: str | None, finish: str | None) -> None:
    response = parse_response(message([{"type": "text", "text": "x"}], stop=stop), "m")
    assert response.finish_reason == finish


def test_usage_adds_cache_reads_and_writes_to_the_whole_prompt() -> None:
    usage = {"input_tokens": 50, "cache_creation_input_tokens": 200,
             "cache_read_input_tokens": 1800, "output_tokens": 40}  # fmt: skip
    response = parse_response(message([], usage), "m")
    assert response.usage == Usage(input_tokens=2050, output_tokens=40, cached_tokens=1800,
                                   cache_write_tokens=200)  # fmt: skip
    assert response.content is None and response.tool_calls == []
    price = Price(input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=0.3,
                  cache_write_per_mtok=3.75)  # fmt: skip
    expected = (50 * 3.0 + 1800 * 0.3 + 200 * 3.75 + 40 * 15.0) / 1e6
    assert call_cost(response.usage, price) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("usage", "shown"),
    [({"input_tokens": -5}, "usage.input_tokens=-5"),
     ({"input_tokens": 1, "cache_read_input_tokens": 1.5}, "usage.cache_read_input_tokens=1.5"),
     ({"cache_creation_input_tokens": MAX_USAGE_TOKENS + 1}, "cache_creation_input_tokens"),
     ({"output_tokens": "7"}, "usage.output_tokens='7'")],
)  # fmt: skip
def test_invalid_usage_is_a_typed_model_error(usage: dict[str, Any], shown: str) -> None:
    error = refused(message([], usage))
    assert error.type == "LLMBadUsage" and shown in error.message


def test_input_as_json_text_is_kept_for_the_workflow_to_judge() -> None:
    content = [{"type": "tool_use", "id": "t1", "name": "get_order", "input": '{"order_id": "O-'}]
    assert parse_response(message(content), "m").tool_calls[0].arguments == '{"order_id": "O-'


@pytest.mark.parametrize(
    ("data", "shown"),
    [([1], "the body is a JSON list"),
     ({"type": "message"}, "no content"),
     (message("hello"), "content is a str"),
     (message(["hello"]), "content[0] is not an object"),
     (message([{"type": "text", "text": 5}]), "content[0] (text) has no string 'text'"),
     (message([{"type": "tool_use", "id": "t", "input": {}}]), "content[0] (tool_use) has no name"),
     (message([{"type": "tool_use", "id": "t", "name": "n", "input": [1]}]), "input is a list"),
     (message([{"type": "tool_use", "id": 7, "name": "n", "input": {}}]), "id that is not text"),
     ({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
      "overloaded_error: busy")],
)  # fmt: skip
def test_what_is_not_a_message_is_one_readable_model_error(data: Any, shown: str) -> None:
    error = refused(data)
    assert error.type == "LLMBadResponse"
    assert shown in error.message, error.message
