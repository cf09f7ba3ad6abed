"""Tool errors answered as plain text: the profile's error pattern makes them tool errors."""

from __future__ import annotations

from mcp.types import CallToolResult, TextContent

from keel.contracts import ServerSettings, ToolPolicy
from workflows.tools.mcp_calls import as_tool_error, error_pattern
from workflows.tools.mcp_calls import lookup_result as _lookup_result


def text_result(text: str, is_error: bool = False) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=is_error)


def test_a_matching_text_result_is_a_tool_error() -> None:
    result = as_tool_error(text_result("Error: order ORD-9999 not found"), r"^Error: ")
    assert result.is_error is True
    assert _lookup_result(result).ok is False  # a lookup that returns it fails
    assert _lookup_result(result).error == "Error: order ORD-9999 not found"


def test_other_results_are_left_alone() -> None:
    ok = text_result('{"order_id": "ORD-1042", "note": "no Error: here"}')
    assert as_tool_error(ok, r"^Error: ").is_error is False
    assert as_tool_error(ok, None).is_error is False
    assert _lookup_result(as_tool_error(ok, r"^Error: ")).ok is True


def test_the_tool_pattern_wins_over_the_server_pattern() -> None:
    server = ServerSettings(name="third", error_pattern="^Error: ")
    assert error_pattern(server, None) == "^Error: "
    assert error_pattern(server, ToolPolicy(error_pattern="^FAILED")) == "^FAILED"
    assert error_pattern(ServerSettings(name="third"), ToolPolicy()) is None
