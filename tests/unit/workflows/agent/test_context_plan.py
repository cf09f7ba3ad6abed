"""Context budgets, planned (pure functions): stubs, trimming, summary ranges, pinned facts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from keel.contracts import (
    SUMMARY_MARKER,
    ChatMessage,
    ContextSettings,
    StepRecord,
    ToolCall,
)
from workflows.agent.budget import estimate_prompt_tokens
from workflows.agent.context_meta import key_arguments, make_stub, message_meta
from workflows.agent.context_plan import (
    kept_from,
    pinned_facts,
    plan_trim,
    spans,
    summary_header,
    summary_message,
    summary_range,
    turns_in,
    worth_summarizing,
)
from workflows.agent.transcript import Transcript

ORDER = {
    "order_id": "ORD-1042",
    "customer_id": "CUS-1001",
    "status": "delivered",
    "currency": "USD",
    "items": [
        {"product_id": "SKU-1", "name": "Trail Running Shoes", "quantity": 1, "unit_price": 42.0}
    ],
    "total": 42.0,
    "refundable": 42.0,
    "delivered_at": "2026-11-06",
    "notes": "The customer asked twice about the delivery window; " * 20,
}
DIGEST = "sha256:" + "a" * 64


def conversation(turns: int, page_bytes: int = 3000) -> Transcript:
    """A run of ``turns`` tool turns, each one call with a ``page_bytes`` text result."""
    transcript = Transcript()
    transcript.append(ChatMessage(role="system", content="You read pages."),
                      ChatMessage(role="user", content="Read the archive."))  # fmt: skip
    assert transcript.keep_context()
    for turn in range(turns):
        call = ToolCall(id=f"call_{turn}_0", name="read_page", arguments=f'{{"page": {turn}}}')
        transcript.append(ChatMessage(role="assistant", content=f"Page {turn}.", tool_calls=[call]))
        text = f"page {turn} of ORD-{2000 + turn}: " + "lorem ipsum " * (page_bytes // 12)
        transcript.append(ChatMessage(role="tool", tool_call_id=call.id, content=text))
    return transcript


def test_a_json_result_stub_keeps_ids_and_key_fields_and_says_how_to_get_it_back() -> None:
    content = json.dumps(ORDER)
    stub = make_stub("get_order", content, DIGEST)
    assert stub is not None and len(stub) < len(content) / 2
    kept = json.loads(stub)
    assert (kept["order_id"], kept["customer_id"], kept["status"]) == ("ORD-1042", "CUS-1001",
                                                                        "delivered")  # fmt: skip
    assert (kept["total"], kept["refundable"], kept["delivered_at"]) == (42.0, 42.0, "2026-11-06")
    assert kept["items"] == [{"product_id": "SKU-1", "name": "Trail Running Shoes"}]
    assert "notes" not in kept
    assert kept["trimmed"].startswith("get_order result (1,313 bytes) trimmed")
    assert f"(or keel result --content {DIGEST})" in kept["trimmed"]
    assert "call get_order again" in kept["trimmed"]


def test_a_text_result_stub_keeps_a_head_and_the_ids_it_names() -> None:
    content = "Ticket TCK-77 for ORD-1042 (customer CUS-1001): " + "details " * 400
    kept = json.loads(make_stub("read_ticket", content, None) or "{}")
    assert kept["head"].startswith("Ticket TCK-77") and kept["head"].endswith("…")
    assert kept["ids"] == ["TCK-77", "ORD-1042", "CUS-1001"]
    assert "keel result" not in kept["trimmed"], "no digest: no store to get it from"


def test_a_small_result_gets_no_stub_and_is_never_trimmed() -> None:
    meta = message_meta(ChatMessage(role="tool", tool_call_id="c1", content='{"ok":true}'),
                        "ping", DIGEST)  # fmt: skip
    assert meta.stub is None


def test_the_transcript_records_each_message_with_its_tool_and_size() -> None:
    transcript = conversation(2)
    context = transcript.state.context
    assert context is not None
    assert [m.role for m in context.meta] == ["system", "user", "assistant", "tool"] * 1 + [
        "assistant", "tool"]  # fmt: skip
    assert sum(m.size for m in context.meta) == transcript.state.text_bytes
    tool = context.meta[3]
    assert (tool.tool, tool.answers, tool.ids) == ("read_page", "call_0_0", ["ORD-2000"])
    assert context.meta[2].calls[0].args == {"page": 0}


def test_records_cannot_start_once_messages_went_by_reference() -> None:
    transcript = Transcript()
    transcript.append(ChatMessage(role="system", content="s"))
    transcript.sent(None)
    transcript.state.pending = []  # as after a stored node: the counts see more than pending
    assert not transcript.keep_context()


def test_under_the_budget_nothing_is_trimmed() -> None:
    state = conversation(3).state
    plan = plan_trim(state, ContextSettings(max_input_tokens=100_000), [])
    assert plan.trimmed == [] and plan.state.view() is None
    assert plan.tokens == estimate_prompt_tokens(state, [])


def test_over_the_budget_the_oldest_results_are_trimmed_never_the_recent_turns() -> None:
    state = conversation(6).state  # tool messages at 3, 5, 7, 9, 11, 13
    whole = estimate_prompt_tokens(state, [])
    settings = ContextSettings(max_input_tokens=whole - 1500, keep_recent_turns=2)
    plan = plan_trim(state, settings, [])
    assert plan.trimmed == [3, 5] and plan.kept_from == 10
    assert plan.tokens <= settings.max_input_tokens
    state.context = plan.state
    assert estimate_prompt_tokens(state, []) == plan.tokens, "the budget sees the view"
    tight = ContextSettings(max_input_tokens=256, keep_recent_turns=2)
    most = plan_trim(state, tight, [])
    assert most.trimmed == [7, 9] and most.state.trimmed == [3, 5, 7, 9]
    assert most.tokens > tight.max_input_tokens, "the kept turns alone are over: it says so"
    view = most.state.view()
    assert view is not None and sorted(view.stubs) == [3, 5, 7, 9]


def test_trimming_is_sticky_even_when_the_budget_would_allow_more() -> None:
    state = conversation(4).state
    state.context = plan_trim(state, ContextSettings(max_input_tokens=256), []).state
    again = plan_trim(state, ContextSettings(max_input_tokens=1_000_000), [])
    assert again.state.trimmed == [3, 5] and again.trimmed == []


def test_keep_zero_still_shows_the_newest_turn_whole() -> None:
    meta = conversation(3).state.context.meta  # type: ignore[union-attr]
    assert kept_from(meta, 0) == kept_from(meta, 1) == 6


def test_the_summary_range_starts_after_the_task_and_ends_at_a_turn_boundary() -> None:
    state = conversation(5).state
    context = state.context
    assert context is not None
    boundary = kept_from(context.meta, 2)
    assert summary_range(context.meta, context, boundary) == (2, 8)
    assert turns_in(context.meta, 2, 8) == 3
    assert context.meta[8].role == "assistant", "the range never ends inside a tool turn"
    context.summarized, context.summary = (2, 8), "summary"
    assert summary_range(context.meta, context, boundary) is None, "nothing new to summarize"
    state = conversation(7).state
    later = state.context
    assert later is not None
    later.summarized, later.summary = (2, 8), "summary"
    assert summary_range(later.meta, later, kept_from(later.meta, 2)) == (2, 12)


def test_a_summary_is_taken_only_when_it_cannot_be_longer_than_what_it_replaces() -> None:
    context = conversation(5, page_bytes=6000).state.context
    assert context is not None
    assert worth_summarizing(context, 2, 8, "header", 512)
    small = conversation(5, page_bytes=100).state.context
    assert small is not None and not worth_summarizing(small, 2, 8, "header", 512)


def _tool(step: int, call_id: str, name: str, validation: str = "passed") -> StepRecord:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return StepRecord(step=step, kind="tool", name=name, tool_call_id=call_id, started_at=at,
                      validation=validation)  # fmt: skip


def test_pinned_facts_list_executed_actions_and_the_ids_later_calls_use() -> None:
    transcript = Transcript()
    transcript.append(ChatMessage(role="system", content="s"))
    transcript.append(ChatMessage(role="user", content="t"))
    transcript.keep_context()
    turns = [
        [ToolCall(id="a", name="search_customers", arguments='{"query": "maria"}')],
        [ToolCall(id="b", name="refund_order", arguments='{"order_id": "ORD-1042", "amount": 42.0,'
                  ' "note": "' + "x" * 100 + '"}'),
         ToolCall(id="c", name="export_report", arguments='{"kilobytes": 2}')],
        [ToolCall(id="d", name="get_customer", arguments='{"customer_id": "CUS-1001"}')],
    ]  # fmt: skip
    results = ['{"customers": [{"customer_id": "CUS-1001"}, {"customer_id": "CUS-1077"}]}',
               '{"refund_id": "REF-9"}', "exported", '{"customer_id": "CUS-1001"}']  # fmt: skip
    answers = iter(results)
    for calls in turns:
        transcript.append(ChatMessage(role="assistant", tool_calls=calls))
        transcript.append(*[ChatMessage(role="tool", tool_call_id=c.id, content=next(answers))
                            for c in calls])  # fmt: skip
    context = transcript.state.context
    assert context is not None
    steps = [_tool(1, "a", "search_customers"), _tool(2, "b", "refund_order",
             "passed; approved by alice"), _tool(2, "c", "export_report"),
             _tool(3, "d", "get_customer")]  # fmt: skip
    reads = {"search_customers", "get_customer", "refund_order"}
    pinned = pinned_facts(context.meta, 2, 8, steps, lambda name: name not in reads)
    assert pinned == [
        "- executed refund_order(order_id=ORD-1042, amount=42.0) at step 2 (call b),"
        " approved by alice",
        "- executed export_report(kilobytes=2) at step 2 (call c)",
        "- ids the run works with: ORD-1042, CUS-1001",
    ]


def test_the_summary_message_starts_with_the_marker_of_the_turns_it_replaces() -> None:
    header = summary_header(3, 2, 8, 6)
    message = summary_message(header, "They read pages.", ["- ids the run works with: ORD-1"])
    assert message.startswith(SUMMARY_MARKER.format(turns=3))
    assert "Messages 2-7" in message and "at step 6" in message
    assert message.endswith("Pinned facts (kept by Keel, not summarized):\n- ids the run works"
                            " with: ORD-1")  # fmt: skip


def test_key_arguments_and_spans() -> None:
    assert key_arguments('{"order_id": "ORD-1", "body": "' + "y" * 90 + '", "n": 2}') == {
        "order_id": "ORD-1", "n": 2}  # fmt: skip
    assert key_arguments("not json") == {}
    assert spans([9, 3, 5, 6, 7]) == "3, 5-7, 9"
