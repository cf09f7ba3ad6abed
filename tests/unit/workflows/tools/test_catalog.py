"""Tool catalog, the schema-layer entry point on a small catalog, and tool-result text.

The full validation layers are tested against the real support-desk schemas in
tests/test_validation.py; here the catalog is hand-made so allow-lists are easy to see.
"""

from __future__ import annotations

import base64
import json

import pytest
from mcp.types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ListToolsResult,
    ResourceLink,
    TextContent,
    TextResourceContents,
    Tool,
    ToolAnnotations,
)

from activities.tool_view import compact_json, result_images, result_text
from keel.contracts import ImagePart, ServerSettings, ToolCall
from workflows.tools.catalog import CatalogError, build_catalog
from workflows.tools.validation import PreparedCall, Rejection, check_schema

SCHEMA = {"type": "object", "properties": {"order_id": {"type": "string"}}}


def listing(*names: str) -> ListToolsResult:
    return ListToolsResult(
        tools=[
            Tool(
                name=n,
                input_schema=SCHEMA,
                annotations=ToolAnnotations(read_only_hint=True),
            )
            for n in names
        ]
    )


def catalog():
    return build_catalog(
        [
            ServerSettings(name="desk", tools=["get_order", "list_orders"]),
            ServerSettings(name="kb"),
        ],
        {"desk": listing("get_order", "list_orders", "refund_order"), "kb": listing("search")},
    )


def test_catalog_applies_allow_list_and_keeps_schemas() -> None:
    tools = catalog()
    assert [(t.server, t.name) for t in tools] == [
        ("desk", "get_order"),
        ("desk", "list_orders"),
        ("kb", "search"),
    ]
    assert tools[0].input_schema == SCHEMA
    assert tools[0].annotations["read_only_hint"] is True


def test_catalog_rejects_allowed_tool_the_server_lacks() -> None:
    with pytest.raises(CatalogError, match="get_invoice"):
        build_catalog([ServerSettings(name="desk", tools=["get_invoice"])], {"desk": listing("a")})


def test_catalog_rejects_same_tool_on_two_servers() -> None:
    with pytest.raises(CatalogError, match="offered by both"):
        build_catalog(
            [ServerSettings(name="a"), ServerSettings(name="b")],
            {"a": listing("search"), "b": listing("search")},
        )


def test_catalog_rejects_an_invalid_input_schema() -> None:
    broken = ListToolsResult(
        tools=[Tool(name="get_order", input_schema={"type": "object", "properties": {"a": 1}})]
    )
    with pytest.raises(CatalogError, match=r"get_order.*invalid input schema: properties\.a"):
        build_catalog([ServerSettings(name="desk")], {"desk": broken})


def test_valid_call_is_prepared() -> None:
    prepared = check_schema(
        ToolCall(id="c1", name="get_order", arguments='{"order_id":"ORD-1"}'), catalog()
    )
    assert isinstance(prepared, PreparedCall)
    assert prepared.arguments == {"order_id": "ORD-1"}
    assert prepared.tool.server == "desk"


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("get_ordr", "{}", "Unknown tool 'get_ordr'"),
        ("refund_order", "{}", "Unknown tool 'refund_order'"),
        ("get_order", '{"order_id": "ORD-10', "not valid JSON"),
        ("get_order", "[1, 2]", "must be a JSON object"),
    ],
)
def test_invalid_calls_are_rejected_as_data(name: str, arguments: str, expected: str) -> None:
    outcome = check_schema(ToolCall(id="c1", name=name, arguments=arguments), catalog())
    assert isinstance(outcome, Rejection)
    assert expected in outcome.message
    content = json.loads(outcome.as_tool_content())
    assert content["error"] == "invalid_tool_call"
    assert content["layer"] == "schema"


def test_unknown_tool_suggests_closest_name() -> None:
    outcome = check_schema(ToolCall(id="c", name="get_ordr", arguments="{}"), catalog())
    assert isinstance(outcome, Rejection)
    assert "Did you mean: get_order" in outcome.message


def test_result_text_compacts_json_and_keeps_plain_text() -> None:
    pretty = json.dumps({"a": 1, "b": [1, 2]}, indent=2)
    result = CallToolResult(content=[TextContent(type="text", text=pretty)])
    assert result_text(result) == '{"a":1,"b":[1,2]}'
    assert compact_json("not json {") == "not json {"
    assert compact_json("{broken") == "{broken"
    empty = CallToolResult(content=[], structured_content={"x": 1})
    assert result_text(empty) == '{"x":1}'


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 5112).decode()  # 5,120 bytes


def test_multimodal_blocks_become_markers_in_place() -> None:
    link = ResourceLink(type="resource_link", uri="file:///r/q3.pdf", name="q3.pdf",
                        mime_type="application/pdf", size=2_400_000)  # fmt: skip
    notes = TextResourceContents(uri="file:///r/notes.md", mime_type="text/markdown",
                                 text="# Notes")  # fmt: skip
    raw = BlobResourceContents(uri="file:///r/raw.bin", mime_type="application/octet-stream",
                               blob=PNG)  # fmt: skip
    result = CallToolResult(
        content=[
            TextContent(type="text", text="Sales chart:"),
            ImageContent(type="image", data=PNG, mime_type="image/png"),
            AudioContent(type="audio", data=PNG, mime_type="audio/wav"),
            link,
            EmbeddedResource(type="resource", resource=notes),
            EmbeddedResource(type="resource", resource=raw),
        ]
    )
    assert result_text(result).splitlines() == [
        "Sales chart:",
        "[image/png, 5 KB]",
        "[audio/wav, 5 KB: audio is not passed to the model]",
        "[resource link: file:///r/q3.pdf (q3.pdf, application/pdf, 2.4 MB)]",
        "[resource file:///r/notes.md (text/markdown)]",
        "# Notes",
        "[resource file:///r/raw.bin (application/octet-stream, 5 KB)]",
    ]
    assert result_images(result) == [ImagePart(mime_type="image/png", data=PNG)]


def test_an_image_only_result_is_not_silent() -> None:
    only = CallToolResult(content=[ImageContent(type="image", data=PNG, mime_type="image/png")])
    assert result_text(only) == "[image/png, 5 KB]"
    both = CallToolResult(
        content=[ImageContent(type="image", data=PNG, mime_type="image/png")],
        structured_content={"chart": "sales"},
    )
    assert result_text(both) == '{"chart":"sales"}\n[image/png, 5 KB]'
