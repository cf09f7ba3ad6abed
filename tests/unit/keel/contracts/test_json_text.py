"""JSON from a model or a tool cannot break the workflow by its nesting."""

from __future__ import annotations

import json

import pytest

from activities.tool_view import compact_json
from keel.contracts import ToolCall, ToolSpec
from keel.contracts.json_text import MAX_DEPTH, TooDeep, loads_bounded, nesting_depth
from workflows.tools.validation import Rejection, Validator

DEEP = "[" * 5000 + "]" * 5000


def test_depth_is_counted_outside_strings() -> None:
    assert nesting_depth('{"a": [1, {"b": "[[[["}]}') == 3
    assert nesting_depth('"\\"[[["') == 0
    assert nesting_depth("[]" * 1000) == 1


def test_text_nested_too_deep_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(TooDeep, match=f"deeper than {MAX_DEPTH}"):
        loads_bounded(DEEP)
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads_bounded(nested) == json.loads(nested)


def test_deep_arguments_are_a_schema_refusal_not_a_recursion_error() -> None:
    tool = ToolSpec(name="get_order", server="desk", description="",
                    input_schema={"type": "object"})  # fmt: skip
    outcome = Validator([tool]).check_schema(
        ToolCall(id="c1", name="get_order", arguments='{"a": ' + DEEP + "}")
    )
    assert isinstance(outcome, Rejection)
    assert "nested deeper than" in outcome.message
    assert "\n" not in outcome.message


def test_a_deep_tool_result_is_kept_as_text() -> None:
    assert compact_json(DEEP) == DEEP
