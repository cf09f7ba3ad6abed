"""Context budgets on the real stack: old tool results trimmed to stubs, old turns summarized
by the summary tier in steps of their own, and what the provider received still a valid
conversation (the simulator answers a broken tool pairing with a 400, which fails the run)."""

from __future__ import annotations

import json
import re
from typing import Any

from temporalio.client import Client

from keel.contracts import Price, RunResult, call_cost
from keel.stack import Stack
from tests.helpers import sim_requests, start

FAST = Price(input_per_mtok=0.1, output_per_mtok=0.2)  # tests/profiles/context_summary.toml


def bodies(stack: Stack, conversation: str) -> dict[int, dict[str, Any]]:
    """The request body the simulator recorded for each turn (the last one of a turn)."""
    return {r["turn"]: r["body"] for r in sim_requests(stack, conversation)}


def model_notes(result: RunResult) -> list[str | None]:
    return [s.context for s in result.steps if s.kind == "model" and s.purpose is None]


async def test_a_long_run_trims_the_oldest_results_to_stubs_that_keep_their_ids(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "context_trim", task="Look ORD-1042 up and read the archive.")
    result = await handle.result()
    assert (result.status, result.model_calls) == ("completed", 5), result.error
    notes = model_notes(result)
    assert notes[:3] == [None, None, None], "under the budget the whole conversation goes"
    assert re.fullmatch(r"context: ~[\d,]+ of 4,000 tokens; 2 tool results trimmed \(messages"
                        r" 4-5\)", notes[3] or "")  # fmt: skip
    assert re.fullmatch(r"context: ~[\d,]+ of 4,000 tokens; 3 tool results trimmed \(messages"
                        r" 4-5, 7; new: 7\)", notes[4] or "")  # fmt: skip

    sent = bodies(stack, handle.id)
    before, fourth, fifth = (sent[turn]["messages"] for turn in (2, 3, 4))
    order, article, page = (json.loads(fourth[i]["content"]) for i in (3, 4, 5))
    assert "unit_price" in json.dumps(order), "a result about as small as its stub stays whole"
    assert (article["article_id"], article["title"]) == ("refund-policy", "Refund policy")
    assert "text" not in article and article["trimmed"].startswith("get_article result (")
    assert "call get_article again" in article["trimmed"]
    [record] = [s for s in result.steps if s.name == "get_article"]
    assert record.content_ref is not None
    assert f"keel result --content {record.content_ref.digest}" in article["trimmed"]
    assert page["head"].startswith("page 1:") and "read_page" in page["trimmed"]
    assert fourth[7]["content"].startswith("page 2:"), "the two newest turns stay whole"
    assert fifth[:7] == fourth[:7], "trimmed once, trimmed the same way after (a stable prefix)"
    assert json.loads(fifth[7]["content"])["head"].startswith("page 2:")
    for body in (before, fourth, fifth):
        ids = [m.get("tool_call_id") for m in body if m["role"] == "tool"]
        calls = [c["id"] for m in body if m["role"] == "assistant" for c in m.get("tool_calls", [])]
        assert ids == calls, "every call keeps its tool message"


async def test_a_run_over_budget_after_trimming_is_summarized_with_its_facts_pinned(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "context_summary", task="Look ORD-1042 up, export and read.")
    result = await handle.result()
    assert result.status == "completed", result.error
    assert (result.final_answer or "").startswith("ORD-1042 is looked up, the report exported")
    tools = [(s.name, s.step) for s in result.steps if s.kind == "tool"]
    assert [name for name, _ in tools] == ["get_order", "export_report", *["read_page"] * 4], (
        "every scripted turn played once: the simulator counts the turns a summary replaced"
    )
    summaries = [s for s in result.steps if s.purpose == "summary"]
    assert summaries, "trimming was not enough: older turns were summarized"
    first = summaries[0]
    assert (first.kind, first.tier, first.route) == ("model", "fast", "summary")
    assert first.outcome == "ok"
    assert first.usage is not None and first.cost_usd == call_cost(first.usage, FAST) > 0
    planned = re.fullmatch(r"context: summarizing messages 2-(\d+) \((\d+) turns\) for step (\d+)",
                           first.context or "")  # fmt: skip
    assert planned is not None and int(planned.group(3)) == first.step + 1
    last, turns = int(planned.group(1)), int(planned.group(2))
    assert last >= 5 and turns == (last - 1) // 2, "whole turns (an assistant and its result)"
    after = next(s for s in result.steps if s.kind == "model" and s.step == first.step + 1)
    assert after.purpose is None and f"messages 2-{last} summarized at step {first.step}" in (
        after.context or "")  # fmt: skip
    assert result.model_calls == len([s for s in result.steps if s.kind == "model"])

    sent = bodies(stack, handle.id)
    marker = f"[keel:summary turns={turns}]"
    summarized = next(body["messages"] for body in sent.values()
                      if len(body["messages"]) > 2
                      and (body["messages"][2]["content"] or "").startswith(marker))  # fmt: skip
    message = summarized[2]["content"]
    assert summarized[2]["role"] == "user" and summarized[1]["content"].startswith("Look ORD-1042")
    assert f"Summary:\nSimulated summary of messages 2-{last}:" in message
    pinned = message.split("Pinned facts (kept by Keel, not summarized):\n", 1)[1]
    assert "- executed export_report(kilobytes=1) at step 2 (call call_1_0)" in pinned
    assert "ORD-1042" in pinned
    assert summarized[3]["role"] == "assistant", "the summary ends at a turn boundary"

    [request, *_] = sim_requests(stack, handle.id + ".summary")
    system, user = request["body"]["messages"]
    assert system["role"] == "system" and system["content"].startswith("[keel:summarize]")
    assert "tools" not in request["body"] or not request["body"]["tools"]
    assert "--- message 3: tool result of get_order (call call_0_0) ---" in user["content"]
    assert '"trimmed":"export_report result' in user["content"], "it reads the trimmed view"
