"""Parsing a chat-completions body: the valid variants real servers send are accepted, the
invalid ones are one readable, non-retryable ``model_error`` (over real HTTP:
tests/integration/test_provider_wire.py)."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.providers.openai_compat import MAX_USAGE_TOKENS, parse_response
from workflows.failures import classify


def body(message: dict[str, Any], usage: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}}],
    }
    data["usage"] = usage if usage is not None else {"prompt_tokens": 3, "completion_tokens": 2}
    return data


def refused(data: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        parse_response(data, "m")
    error = info.value
    assert error.non_retryable is True
    assert "\n" not in error.message
    return error


def test_content_as_a_list_of_text_parts_is_joined() -> None:
    parts = [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "Maria."}]
    assert parse_response(body({"content": parts}), "m").content == "Hello, Maria."
    assert parse_response(body({"content": []}), "m").content is None


def test_content_parts_that_are_not_text_parts_are_a_model_error() -> None:
    error = refused(body({"content": [{"type": "text", "text": 5}]}))
    assert error.type == "LLMBadResponse"
    assert "message.content[0]" in error.message
    assert refused(body({"content": ["plain"]})).type == "LLMBadResponse"
    assert refused(body({"content": 42})).type == "LLMBadResponse"


def test_object_arguments_become_json_text() -> None:
    call = {"id": "c1", "type": "function",
            "function": {"name": "get_order", "arguments": {"order_id": "ORD-1042"}}}  # fmt: skip
    response = parse_response(body({"content": None, "tool_calls": [call]}), "m")
    assert response.tool_calls[0].arguments == '{"order_id": "ORD-1042"}'


def test_arguments_of_another_type_are_a_model_error() -> None:
    call = {"id": "c1", "function": {"name": "get_order", "arguments": [1, 2]}}
    error = refused(body({"tool_calls": [call]}))
    assert "function.arguments is a list" in error.message


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -5, "completion_tokens": 2},
        {"prompt_tokens": 5, "completion_tokens": -1},
        {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": -3}},
        {"prompt_tokens": MAX_USAGE_TOKENS + 1, "completion_tokens": 2},
        {"prompt_tokens": 2.5, "completion_tokens": 2},
        {"prompt_tokens": "12", "completion_tokens": 2},
        {"prompt_tokens": True, "completion_tokens": 2},
        [1, 2],
    ],
)
def test_negative_or_absurd_usage_is_a_typed_model_error(usage: Any) -> None:
    error = refused(body({"content": "hi"}, usage))
    assert error.type == "LLMBadUsage"
    assert error.message.startswith("LLM provider reported invalid usage: usage")
    assert classify(error, "model 'm'")[0] == "model_error"


def test_valid_usage_is_kept() -> None:
    usage = {"prompt_tokens": 10.0, "completion_tokens": 4,
             "prompt_tokens_details": {"cached_tokens": 6}}  # fmt: skip
    parsed = parse_response(body({"content": "hi"}, usage), "m").usage
    assert (parsed.input_tokens, parsed.output_tokens, parsed.cached_tokens) == (10, 4, 6)


@pytest.mark.parametrize(
    "data", [[], {"choices": []}, {"choices": [{"message": "x"}]}, {"choices": [5]}]
)
def test_shapes_without_a_message_are_a_model_error(data: Any) -> None:
    error = refused(data)
    assert error.type == "LLMBadResponse"
    assert classify(error, "model 'm'")[0] == "model_error"
