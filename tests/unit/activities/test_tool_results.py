"""Cutting a tool result on the worker (over real MCP: tests/integration/test_payload_limits.py)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.worker import ExecuteActivityInput

from activities.mcp import check_size, take_result_limit
from activities.tool_results import DEFAULT_MAX_RESULT_BYTES, cut_result
from keel.contracts import names
from keel.contracts.sizes import human_size


def result(*content: dict[str, Any], structured: Any = None) -> dict[str, Any]:
    return {"meta": None, "content": list(content), "structured_content": structured,
            "is_error": False}  # fmt: skip


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value, "annotations": None, "meta": None}


def texts(cut: dict[str, Any]) -> list[str]:
    return [b["text"] for b in cut["content"] if b["type"] == "text"]


def test_a_result_within_the_limit_is_untouched() -> None:
    small = result(text("a" * 100), structured={"a": 1})
    assert cut_result(small, 1024) is small


def test_long_text_is_cut_with_a_marker_saying_how_much() -> None:
    big = result(text("a" * 3000), text("b" * 3000), structured={"x": "y" * 6000})
    cut = cut_result(big, 4000)
    shown = texts(cut)
    assert shown[0] == "a" * 3000 and shown[1] == "b" * 1000
    assert shown[2] == (
        "[tool result cut: showing 4,000 of 6,000 bytes, 2,000 bytes not shown (the server's"
        " max_result_bytes is 4,000); the full result is not kept]"
    )
    assert cut["structured_content"] is None
    assert cut["meta"] == {names.META_RESULT_CUT_BYTES: 2000}


def test_text_is_cut_at_a_utf8_boundary() -> None:
    cut = cut_result(result(text("é" * 3000)), 1025)
    assert texts(cut)[0] == "é" * 512


def test_structured_content_alone_becomes_cut_text() -> None:
    cut = cut_result(result(structured={"rows": ["r" * 50] * 100}), 1024)
    assert cut["structured_content"] is None
    assert len(texts(cut)[0].encode()) == 1024
    assert texts(cut)[1].startswith("[tool result cut: showing 1,024 of ")


def test_oversized_structured_content_is_dropped_when_the_text_fits() -> None:
    cut = cut_result(result(text("summary"), structured={"rows": ["r"] * 2000}), 1024)
    assert texts(cut) == ["summary"] and cut["structured_content"] is None


def test_an_image_over_the_limit_becomes_a_marker() -> None:
    data = base64.b64encode(b"\x89PNG" + b"\0" * 5000).decode()
    image = {"type": "image", "data": data, "mime_type": "image/png"}
    cut = cut_result(result(text("chart:"), image), 2048)
    assert texts(cut)[:2] == ["chart:", "[image/png, 5 KB: over the tool-result limit, not shown]"]
    assert all(b["type"] == "text" for b in cut["content"])
    assert cut_result(result(image), 100_000)["content"] == [image]


def test_human_sizes() -> None:
    assert [human_size(n) for n in (512, 5_120, 1_400_000)] == ["512 B", "5 KB", "1.4 MB"]


def test_the_worker_takes_the_limit_out_of_the_request() -> None:
    meta = {names.META_IDEMPOTENCY_KEY: "wf:1:c", names.META_MAX_RESULT_BYTES: 2048}
    request = {"factory_argument": None, "meta": meta, "name": "t", "arguments": {}}
    call = ExecuteActivityInput(fn=print, args=[request], executor=None, headers={})
    assert take_result_limit(call) == 2048
    assert call.args[0]["meta"] == {names.META_IDEMPOTENCY_KEY: "wf:1:c"}
    bare = ExecuteActivityInput(fn=print, args=[{"meta": None}], executor=None, headers={})
    assert take_result_limit(bare) == DEFAULT_MAX_RESULT_BYTES


def test_a_result_over_the_payload_limit_fails_for_good() -> None:
    with pytest.raises(ApplicationError) as info:
        check_size({"x": "y" * 2_100_000}, "temporalio.mcp.media.list-tools")
    assert info.value.type == "PayloadTooLarge" and info.value.non_retryable is True
    assert check_size({"x": 1}, "temporalio.mcp.media.list-tools") == {"x": 1}
