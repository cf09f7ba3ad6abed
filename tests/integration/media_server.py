"""A small MCP server for the tests only: tool results that are large or not text.

Run by the test stack's worker over stdio (``KEEL_MCP_MEDIA``, tests/conftest.py), or over
HTTP (``--transport http --port N --insecure-no-auth``) where a result is too large for a pipe:

- ``export_report(kilobytes)`` has a side effect (it appends a line to the ``--calls`` file, the
  tests' ledger of executions) and returns that many kilobytes of text: over Temporal's
  payload limit once its structured copy is added, unless the worker cuts it;
- ``read_page(page, kilobytes)`` returns that many kilobytes of text of its own for each page
  (a long run's tool results, all different);
- ``dump_archive(megabytes)`` returns that many megabytes of text (up to 64): far over any
  payload limit.

Not part of the product (nothing under mcp_servers/ would ship a tool like these).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import struct
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp_types import (
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
    ToolAnnotations,
)
from pydantic import Field

from mcp_servers.shared.launcher import serve

LINE = "Q3 sales export: region=EMEA month=2026-09 orders=1042 revenue=42000.00 USD\n"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid one-colour PNG (8-bit RGB), built by hand so the test needs no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


CHART_PNG = base64.b64encode(png(32, 16, (200, 30, 30))).decode()


def create_server(calls: Path) -> MCPServer:
    server: MCPServer = MCPServer("media", log_level="WARNING")

    @server.tool(
        name="export_report",
        description="Export the sales report (records the export) and return its text.",
        annotations=ToolAnnotations(read_only_hint=False, idempotent_hint=True),
    )
    async def export_report(
        kilobytes: Annotated[int, Field(ge=1, le=8192, description="Size of the report.")],
    ) -> str:
        with calls.open("a", encoding="utf-8") as ledger:
            ledger.write(f"export_report {kilobytes}\n")
        return (LINE * (kilobytes * 1024 // len(LINE) + 1))[: kilobytes * 1024]

    @server.tool(
        name="sales_chart",
        description="The monthly sales chart as an image, with its data file.",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
        structured_output=False,
    )
    async def sales_chart() -> CallToolResult:
        notes = TextResourceContents(uri="file:///reports/q3-notes.md", mime_type="text/markdown",
                                     text="# Q3 notes\nEMEA grew 12%.")  # fmt: skip
        link = ResourceLink(type="resource_link", uri="file:///reports/q3.csv", name="q3.csv",
                            mime_type="text/csv", size=48_000)  # fmt: skip
        return CallToolResult(
            content=[
                TextContent(type="text", text="Monthly sales, Q3 2026:"),
                ImageContent(type="image", data=CHART_PNG, mime_type="image/png"),
                link,
                EmbeddedResource(type="resource", resource=notes),
            ]
        )

    add_bulk_tools(server)
    return server


def page_text(page: int, kilobytes: int) -> str:
    """``kilobytes`` KB of text that only page ``page`` has: words drawn by SHA-256 of the page
    and a counter, so pages differ throughout and compress about as much as prose (not the
    hundredfold of one repeated line, which would flatter a store that compresses)."""
    size = kilobytes * 1024
    words: list[str] = [f"page {page}:"]
    length = len(words[0])
    counter = 0
    while length < size:
        for byte in hashlib.sha256(f"{page}:{counter}".encode()).digest():
            word = f"{WORDS[byte % len(WORDS)]}-{byte}"
            words.append(word)
            length += len(word) + 1
        counter += 1
    return " ".join(words)[:size]


WORDS = ("order", "refund", "invoice", "ledger", "north", "south", "east", "west", "widget",
         "gadget", "shipped", "pending", "paid", "open", "closed", "returned")  # fmt: skip


def add_bulk_tools(server: MCPServer) -> None:
    @server.tool(
        name="read_page",
        description="One page of the archive (each page has text of its own).",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
        structured_output=False,
    )
    async def read_page(
        page: Annotated[int, Field(ge=1, le=100_000, description="Page number.")],
        kilobytes: Annotated[int, Field(ge=1, le=1024, description="Size of the page.")] = 20,
    ) -> str:
        return page_text(page, kilobytes)

    @server.tool(
        name="dump_archive",
        description="The whole archive as text.",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
        structured_output=False,
    )
    async def dump_archive(
        megabytes: Annotated[int, Field(ge=1, le=64, description="Size of the dump.")],
    ) -> str:
        return (LINE * (megabytes * 1024 * 1024 // len(LINE) + 1))[: megabytes * 1024 * 1024]


def main(argv: Sequence[str] | None = None) -> int:
    """stdio unless ``--transport http`` is given (the session stack's worker spawns it)."""

    def calls_file(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--calls", type=Path, required=True, help="file logging each export")

    args = ["--transport", "stdio", *(sys.argv[1:] if argv is None else argv)]
    return serve(lambda a: create_server(a.calls), args, 8290, prog="media",
                 description="The tests' media MCP server.", add_arguments=calls_file)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
