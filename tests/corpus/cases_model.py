"""Corpus cases where the *model* is hostile: invented tools, broken JSON, wrong types,
boundary numbers, invented ids, tool-call ids, usage, loops, escape sequences, huge answers.
"""

from __future__ import annotations

import json
from typing import Any

from tests.corpus.case import (
    NEEDS_TOOL_CALL_ID,
    NEEDS_USAGE,
    Act,
    Case,
    Expect,
    answer,
    call,
    turn,
)

GET = "get_order"
REFUND = "refund_order"
OK_ORDER = {"order_id": "ORD-1042"}
HALLUCINATION = Expect(status=("halted",), failure_class="tool_hallucination")
SCHEMA_STALL = Expect(status=("halted",), failure_class="schema_violation")
REFUSED_THEN_ANSWER = Expect(status=("completed",), effects=0)
SHORT = {"max_wall_clock_seconds": 20}


def stalled_on(kind: str) -> tuple[str, ...]:
    """The classes a stall on one refused call may end with: the refusal's class, or
    no_progress when the repeat counter (identical calls) trips first."""
    return (kind, "no_progress")


def once(klass: str, name: str, bad: dict, expect: Expect | None = None, **kw) -> Case:
    """The hostile call once, then a correct lookup and an answer: the run must recover."""
    turns = [turn(bad), turn(call(GET, OK_ORDER)), answer()]
    return Case(name, klass, turns, expect=expect or REFUSED_THEN_ANSWER, **kw)


def insist(klass: str, name: str, bad: dict, expect: Expect, **kw) -> Case:
    """The hostile call forever: the run must stop on it with the right class."""
    return Case(name, klass, [turn(bad)], after_last="repeat_last", expect=expect, **kw)


def refund(amount_json: str, order: str = "ORD-1042") -> dict:
    return call(REFUND, raw=f'{{"order_id": "{order}", "amount": {amount_json},'
                            ' "reason": "damaged"}')  # fmt: skip


def _hallucinated() -> list[Case]:
    k = "hallucinated_tool"
    refused = Expect(status=("completed",), outcome={"get_ordr": "invalid"}, effects=0)
    return [
        once(k, "hallucinated_close_name", call("get_ordr", OK_ORDER), refused),
        insist(k, "hallucinated_close_name_insists", call("get_ordr", OK_ORDER), HALLUCINATION),
        insist(k, "hallucinated_invented_insists", call("delete_database", {}), HALLUCINATION),
        once(
            k,
            "hallucinated_not_allowed_tool",
            call("add_ticket_note", {"ticket_id": "TCK-5001", "note": "x"}),
            Expect(not_ran=("add_ticket_note",)),
        ),
        once(k, "hallucinated_namespaced", call("support_desk.refund_order", {})),
        once(k, "hallucinated_functions_prefix", call("functions.get_order", OK_ORDER)),
        once(
            k,
            "hallucinated_homoglyph",
            call(
                "refund_\u043erder", {"order_id": "ORD-1042", "amount": 42.0, "reason": "damaged"}
            ),
        ),
        once(k, "hallucinated_case_variant", call("Refund_Order", {})),
        once(k, "hallucinated_blank_name", call(" ", {})),
        once(k, "hallucinated_escape_in_name", call("get_order\x1b[2K", OK_ORDER)),
        once(k, "hallucinated_64_chars", call("x" * 64, {})),
        Case(
            "hallucinated_beside_valid_call",
            k,
            [turn(call("get_ordr", OK_ORDER), call(GET, OK_ORDER)), answer()],
            expect=Expect(status=("completed",), ran=(GET,), outcome={"get_ordr": "invalid"}),
        ),
    ]


def _malformed() -> list[Case]:
    k = "malformed_json"
    deep = '{"order_id": ' + "[" * 20000 + "]" * 20000 + "}"
    raws = {
        "malformed_truncated": '{"order_id": "ORD-10',
        "malformed_array": '["ORD-1042"]',
        "malformed_string": '"ORD-1042"',
        "malformed_empty_text": " ",
        "malformed_null": "null",
        "malformed_trailing_garbage": '{"order_id": "ORD-1042"} and more',
        "malformed_single_quotes": "{'order_id': 'ORD-1042'}",
        "malformed_nan_literal": '{"order_id": NaN}',
        "malformed_lone_surrogate": '{"order_id": "ORD-\\ud800"}',
        "malformed_deeply_nested": deep,
        "malformed_huge_number_text": '{"order_id": ' + "9" * 5000 + "}",
    }
    cases = [once(k, name, call(GET, raw=raw), limits=SHORT if name.endswith("nested") else None)
             for name, raw in raws.items()]  # fmt: skip
    cases.append(once(k, "malformed_duplicate_keys",
                      call(GET, raw='{"order_id": "ORD-1042", "order_id": "ORD-9999"}'),
                      Expect(status=("completed",))))  # fmt: skip
    cases.append(insist(k, "malformed_insists", call(GET, raw='{"order_id": '), SCHEMA_STALL))
    return cases


def _wrong_types() -> list[Case]:
    k = "wrong_types"
    bad: dict[str, dict[str, Any]] = {
        "types_id_integer": {"order_id": 1042},
        "types_id_null": {"order_id": None},
        "types_id_array": {"order_id": ["ORD-1042"]},
        "types_id_object": {"order_id": {"$ne": None}},
        "types_id_bool": {"order_id": True},
        "types_missing_required": {},
        "types_unknown_argument": {"order_id": "ORD-1042", "admin": True},
    }
    cases = [once(k, name, call(GET, args)) for name, args in bad.items()]
    for name, amount in {
        "types_amount_string": '"5"',
        "types_amount_null": "null",
        "types_amount_array": "[5]",
        "types_amount_bool": "true",
    }.items():
        cases.append(
            once(
                k,
                name,
                refund(amount),
                Expect(status=("completed",), effects=0, outcome={REFUND: "invalid"}),
            )
        )
    cases.append(once(k, "types_limit_string", call("list_orders",
                      {"customer_id": "CUS-1001", "limit": "5"})))  # fmt: skip
    cases.append(insist(k, "types_insists", call(GET, {"order_id": 1042}), SCHEMA_STALL))
    return cases


def _boundaries() -> list[Case]:
    k = "boundary_numbers"
    refused = Expect(status=("completed",), effects=0, outcome={REFUND: "invalid"})
    amounts = {
        "bound_amount_zero": "0", "bound_amount_negative": "-1", "bound_amount_1e308": "1e308",
        "bound_amount_tiny": "1e-9", "bound_amount_three_decimals": "0.001",
        "bound_amount_huge_int": str(10**30), "bound_amount_nan_string": '"NaN"',
        "bound_amount_infinity_string": '"Infinity"', "bound_amount_above_refundable": "42.01",
        "bound_amount_negative_zero": "-0.0", "bound_amount_exponent_overflow": "1e999",
    }  # fmt: skip
    cases = [once(k, n, refund(a), refused) for n, a in amounts.items()]
    cases.append(
        Case(
            "bound_amount_equal_refundable_waits",
            k,
            [turn(refund("42.00")), answer()],
            expect=Expect(status=("completed",), requested=(REFUND,), effects=0),
        )
    )
    for name, limit in {
        "bound_limit_zero": 0,
        "bound_limit_above_max": 51,
        "bound_limit_int64_overflow": 2**64,
    }.items():
        cases.append(once(k, name, call("list_orders", raw=json.dumps(
            {"customer_id": "CUS-1001", "limit": limit}))))  # fmt: skip
    return cases


def _invented_ids() -> list[Case]:
    k = "invented_ids"
    semantic = Expect(status=("completed",), effects=0, outcome={REFUND: "invalid"})
    return [
        Case(
            "ids_unknown_order_lookup",
            k,
            [turn(call(GET, {"order_id": "ORD-9999"})), answer()],
            expect=Expect(status=("completed",), outcome={GET: "tool_error"}),
        ),
        once(k, "ids_unknown_order_refund", refund("1.00", "ORD-9999"), semantic),
        insist(
            k,
            "ids_unknown_order_refund_insists",
            refund("1.00", "ORD-9999"),
            Expect(status=("halted",), failure_class=stalled_on("semantic_violation"), effects=0),
        ),
        once(k, "ids_unknown_customer", call("get_customer", {"customer_id": "CUS-0000"})),
        once(k, "ids_sql_injection", call("get_customer", {"customer_id": "CUS-1001' OR '1'='1"})),
        once(k, "ids_path_traversal", call(GET, {"order_id": "../../etc/passwd"})),
        once(
            k,
            "ids_refund_cancelled_order",
            refund("1.00", "ORD-1046"),
            Expect(status=("completed",), effects=0),
        ),
    ]


def _call_ids() -> list[Case]:
    """Scripted tool-call ids: needs the simulator's optional ToolCallSpec.id."""
    k = "tool_call_ids"
    r1 = {"order_id": "ORD-1052", "amount": 1.0, "reason": "damaged"}
    r2 = {"order_id": "ORD-1053", "amount": 2.0, "reason": "damaged"}
    needs = frozenset({NEEDS_TOOL_CALL_ID})
    approve_first = (Act("approve", wait=1),)
    return [
        Case(
            "ids_repeated_in_one_turn",
            k,
            [
                turn(call(GET, OK_ORDER, id="dup"), call(GET, {"order_id": "ORD-1043"}, id="dup")),
                answer(),
            ],
            needs=needs,
        ),
        Case(
            "ids_repeated_across_turns",
            k,
            [
                turn(call(GET, OK_ORDER, id="same")),
                turn(call(GET, {"order_id": "ORD-1043"}, id="same")),
                answer(),
            ],
            needs=needs,
        ),
        Case("ids_missing", k, [turn(call(GET, OK_ORDER, id="")), answer()], needs=needs),
        Case(
            "ids_repeated_on_two_refunds",
            k,
            [turn(call(REFUND, r1, id="dup"), call(REFUND, r2, id="dup")), answer()],
            acts=approve_first,
            needs=needs,
            expect=Expect(effects=1),
        ),
        Case(
            "ids_repeated_refund_across_turns",
            k,
            [turn(call(REFUND, r1, id="again")), turn(call(REFUND, r2, id="again")), answer()],
            acts=approve_first,
            needs=needs,
            expect=Expect(effects=1),
        ),
        Case(
            "ids_colon_in_id",
            k,
            [turn(call(GET, OK_ORDER, id="a:b:c")), answer()],
            needs=needs,
            expect=Expect(ran=(GET,)),
        ),
        Case(
            "ids_very_long",
            k,
            [turn(call(REFUND, r1, id="i" * 128)), answer()],
            acts=approve_first,
            needs=needs,
        ),
        Case(
            "ids_escape_sequence",
            k,
            [turn(call(GET, OK_ORDER, id="c\x1b[31m1")), answer()],
            needs=needs,
        ),
    ]


def _usage() -> list[Case]:
    """Negative and absurd usage reports: needs the simulator's TurnSpec.usage."""
    k = "absurd_usage"
    needs = frozenset({NEEDS_USAGE})
    usages = {
        "usage_negative": {"prompt_tokens": -1000, "completion_tokens": -5},
        "usage_absurd": {"prompt_tokens": 10**12, "completion_tokens": 10**12},
        "usage_cached_above_prompt": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cached_tokens": 1000,
        },
        "usage_zero": {"prompt_tokens": 0, "completion_tokens": 0},
    }
    cases = [Case(n, k, [turn(call(GET, OK_ORDER), usage=u), answer()], needs=needs)
             for n, u in usages.items()]  # fmt: skip
    cases.append(Case("usage_absurd_trips_budget", k, [turn(call(GET, OK_ORDER),
                 usage=usages["usage_absurd"]), answer()], needs=needs,
                 expect=Expect(status=("failed",), failure_class="model_error")))  # fmt: skip
    return cases


def _loops() -> list[Case]:
    k = "loops"
    no_progress = Expect(status=("halted",), failure_class="no_progress")
    return [
        insist(k, "loop_same_lookup", call(GET, OK_ORDER), no_progress),
        insist(
            k,
            "loop_same_refund_rejected",
            refund("1.00", "ORD-1052"),
            Expect(status=("halted",), effects=0),
        ),
        Case(
            "loop_alternating",
            k,
            [turn(call(GET, OK_ORDER)), turn(call(GET, {"order_id": "ORD-1043"}))] * 4,
            after_last="repeat_last",
            expect=Expect(status=("halted",)),
        ),
        insist(
            k,
            "loop_unauthorized_refund",
            refund("1.00", "ORD-1052"),
            Expect(status=("halted",), failure_class=stalled_on("unauthorized"), effects=0),
            principal=("guest", ("guest",)),
        ),
        insist(
            k,
            "loop_many_calls_per_turn",
            call("search_customers", {"query": "a"}),
            Expect(status=("halted",)),
        ),
    ]


def _escapes() -> list[Case]:
    k = "escape_sequences"
    ansi = "\x1b[2J\x1b[31mHACKED\x1b[0m\x1b]0;title\x07\r"
    return [
        once(k, "escape_in_argument", call("search_customers", {"query": f"lopez{ansi}"})),
        once(k, "escape_nul_in_argument", call(GET, {"order_id": "ORD-1042\x00"})),
        Case("escape_in_answer", k, [answer(f"Your refund is on its way {ansi}done")]),
        Case(
            "escape_in_refund_note",
            k,
            [
                turn(
                    call(
                        REFUND,
                        {
                            "order_id": "ORD-1052",
                            "amount": 1.0,
                            "reason": "damaged",
                            "note": f"note {ansi}",
                        },
                    )
                ),
                answer(),
            ],
            expect=Expect(requested=(REFUND,), effects=0),
        ),
        Case(
            "escape_customer_data",
            k,
            [turn(call("get_customer", {"customer_id": "CUS-1027"})), answer()],
            expect=Expect(ran=("get_customer",)),
        ),
        Case("escape_bidi_override_answer", k, [answer("Refund \u202eDENIED\u202c approved")]),
    ]


def _huge_answers() -> list[Case]:
    k = "oversized"
    return [
        Case("oversized_answer_1_5mb", k, [answer("A" * 1_500_000)]),
        Case("oversized_answer_3mb", k, [answer("B" * 3_000_000)]),
        once(k, "oversized_arguments", call("search_customers", {"query": "q" * 400_000})),
    ]


def model_cases() -> list[Case]:
    return [*_hallucinated(), *_malformed(), *_wrong_types(), *_boundaries(), *_invented_ids(),
            *_call_ids(), *_usage(), *_loops(), *_escapes(), *_huge_answers()]  # fmt: skip
