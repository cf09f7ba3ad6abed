"""Results over Temporal's payload limit, on the real stack: never retried, never re-run.

A tool with a side effect (the tests' media MCP server, run by the worker over stdio, logs each
execution) returns 1.2 MB: the worker cuts it to the server's ``max_result_bytes`` before it
returns (and stores it whole), so the call runs once and the model reads the cut text with its
marker. A 3 MB model answer fails the run at once as ``payload_too_large``, its usage still
counted, after one request to the simulator. Three results of 900 KB make a conversation no
model call could carry inline: by reference, the run completes.
"""

from __future__ import annotations

from temporalio.client import Client

from keel.stack import Stack
from tests.conftest import MEDIA_CALLS
from tests.helpers import sim_requests, sim_turns, start


def exports(stack: Stack) -> int:
    path = stack.config.home / MEDIA_CALLS
    lines = path.read_text().splitlines() if path.exists() else []
    return sum(1 for line in lines if line.startswith("export_report "))


async def test_a_large_tool_result_is_cut_and_the_tool_runs_once(
    client: Client, stack: Stack
) -> None:
    before = exports(stack)
    handle = await start(client, "big_tool_result", task="Export the Q3 sales report.")
    result = await handle.result()

    assert result.status == "completed", result.error
    assert exports(stack) - before == 1, "the tool ran again because its result was too big"
    tool = next(s for s in result.steps if s.kind == "tool")
    assert (tool.outcome, tool.attempts) == ("ok", 1)
    answer_request = next(r["body"] for r in sim_requests(stack, handle.id) if r["turn"] == 1)
    tool_message = next(m for m in answer_request["messages"] if m["role"] == "tool")
    content = tool_message["content"]
    assert content.startswith("Q3 sales export: region=EMEA")
    assert tool.content_ref is not None
    assert content.endswith(
        "[tool result cut: showing 8,192 of 1,228,800 bytes, 1,220,608 bytes not shown (the"
        f" server's max_result_bytes is 8,192); the full result is stored as"
        f" {tool.content_ref.digest}]"
    )
    assert len(content.encode()) < 8192 + 300


async def test_a_huge_model_answer_fails_once_as_payload_too_large(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "huge_answer", task="Tell me everything.")
    result = await handle.result()

    assert result.status == "failed"
    assert result.failure_class == "payload_too_large"
    assert result.error and "max_response_bytes=1,000,000" in result.error
    assert sim_turns(stack, handle.id)[0] == {"requests": 1, "completed": 1}
    # the answer was paid for: its usage and cost count against the run's budgets
    assert result.usage.output_tokens >= 750_000
    assert result.cost_usd > 0
    failed = next(s for s in result.steps if s.kind == "model")
    assert failed.outcome == "failed" and failed.usage == result.usage


async def test_a_conversation_larger_than_a_model_call_may_carry_completes(
    client: Client, stack: Stack
) -> None:
    before = exports(stack)
    handle = await start(client, "big_conversation", task="Export three reports.")
    result = await handle.result()

    assert result.status == "completed", result.error
    assert exports(stack) - before == 3
    last = sim_requests(stack, handle.id)[-1]["body"]["messages"]
    sizes = [len(m["content"].encode()) for m in last if m["role"] == "tool"]
    assert len(sizes) == 3 and sum(sizes) > 2_000_000, "the model reads all three results"


async def test_a_task_larger_than_an_activity_input_reaches_the_model_cut(
    client: Client, stack: Stack
) -> None:
    """Over Temporal's 2 MB: the worker's payload store keeps the input, the model reads
    model.max_message_bytes of the task with a marker naming the stored whole."""
    handle = await start(client, "quick", task="x" * 2_010_000)
    result = await handle.result()

    assert result.status == "completed", result.error
    [request] = [r["body"]["messages"] for r in sim_requests(stack, handle.id)]
    task = next(m["content"] for m in request if m["role"] == "user")
    assert len(task.encode()) < 1_100_000 and "[message cut: showing" in task
    assert "sha256:" in task
