"""Tool results that are not text, on the real stack: the tests' media MCP server returns a
caption, a PNG, a resource link and an embedded text resource. The simulator records what it
received: a model that accepts images gets the PNG as an ``image_url`` part in a user message
after the tool message; a text-only model gets markers in the tool message; both read the
resource link and the embedded resource."""

from __future__ import annotations

import base64

from temporalio.client import Client

from keel.stack import Stack
from tests.helpers import sim_requests, start


async def run_chart(client: Client, stack: Stack, profile: str) -> list[dict]:
    handle = await start(client, profile, task="Show me the Q3 sales chart.")
    result = await handle.result()
    assert result.status == "completed", result.error
    return next(r["body"] for r in sim_requests(stack, handle.id) if r["turn"] == 1)["messages"]


def tool_text(messages: list[dict]) -> str:
    content = next(m for m in messages if m["role"] == "tool")["content"]
    assert isinstance(content, str)  # OpenAI tool messages carry text only
    return content


async def test_a_model_that_accepts_images_gets_the_image(client: Client, stack: Stack) -> None:
    messages = await run_chart(client, stack, "tool_image")

    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "user"]
    text = tool_text(messages)
    assert "Monthly sales, Q3 2026:\n[image/png, " in text
    assert "[resource link: file:///reports/q3.csv (q3.csv, text/csv, 48 KB)]" in text
    assert "[resource file:///reports/q3-notes.md (text/markdown)]\n# Q3 notes" in text
    parts = messages[4]["content"]
    assert parts[0]["type"] == "text" and "call_0_0 (1)" in parts[0]["text"]
    url = parts[1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.removeprefix("data:image/png;base64,")).startswith(b"\x89PNG")


async def test_a_text_only_model_gets_a_marker(client: Client, stack: Stack) -> None:
    messages = await run_chart(client, stack, "tool_image_text")

    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    text = tool_text(messages)
    assert "[image/png, " in text and "image_url" not in str(messages)
    assert "[resource link: file:///reports/q3.csv (q3.csv, text/csv, 48 KB)]" in text
