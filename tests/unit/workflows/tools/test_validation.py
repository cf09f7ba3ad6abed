"""The three validation layers against the real support-desk tool schemas.

The support-desk server runs in this process (``desk`` in conftest.py: once per module, on a
temporary SQLite file, reached through the MCP SDK's in-memory client); its ``list_tools``
answer becomes the catalog through ``build_catalog``, exactly as in a run. Semantic lookups
are executed against the same server, so "does ORD-9999 exist?" is answered by the real
``get_order``. Each rejection kind is pinned to the exact JSON the model sees.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from mcp import Client
from mcp.server.mcpserver import MCPServer

from activities.tool_view import result_text
from keel.contracts import Principal, Profile, ServerSettings, ToolCall, ToolPolicy, ToolSpec
from workflows.tools.catalog import build_catalog
from workflows.tools.validation import (
    LookupRequest,
    LookupResult,
    PolicyError,
    PreparedCall,
    Rejection,
    Validator,
    check_authorization,
    check_policies,
    check_schema,
    check_semantics,
    plan_lookups,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # ORD-1042 was delivered on 2026-11-06

REFUND_PROFILE = """
name = "refunds"
system_prompt = "You refund damaged orders."
model = { name = "sim/support_demo" }
servers = [{ name = "support_desk" }]

[tools.refund_order]
roles = ["supervisor", "agent"]

[[tools.refund_order.lookups]]
name = "order"
tool = "get_order"
arguments = { order_id = "$order_id" }

[[tools.refund_order.checks]]
argument = "order_id"
exists = "order"

[[tools.refund_order.checks]]
argument = "amount"
max = "$order.refundable"
message = "refund at most the order's refundable amount (see get_order)"

[[tools.refund_order.checks]]
argument = "amount"
max = 100.00
message = "refunds above 100.00 need a supervisor"

[[tools.refund_order.checks]]
argument = "$order.delivered_at"
min_date = "-30d"
message = "only orders delivered in the last 30 days can be refunded"
"""


@pytest_asyncio.fixture(scope="module")
async def catalog(desk: MCPServer) -> AsyncIterator[list[ToolSpec]]:
    """All eight support-desk tools, converted exactly as a run converts them."""
    async with Client(desk) as client:
        listed = await client.list_tools()
    yield build_catalog([ServerSettings(name="support_desk")], {"support_desk": listed})


@pytest.fixture(scope="module")
def refund_policy() -> ToolPolicy:
    profile = Profile.model_validate(tomllib.loads(REFUND_PROFILE))
    return profile.tools["refund_order"]


async def run_lookups(desk: MCPServer, requests: list[LookupRequest]) -> dict[str, LookupResult]:
    """What the workflow's lookup activities do, against the real server."""
    results = {}
    async with Client(desk) as client:
        for request in requests:
            result = await client.call_tool(request.tool, request.arguments)
            if result.is_error:
                results[request.name] = LookupResult(ok=False, error=result_text(result))
            else:
                results[request.name] = LookupResult(ok=True, data=result.structured_content)
    return results


def call(name: str, arguments: Any) -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id="call_1", name=name, arguments=text)


def rejected(outcome: PreparedCall | Rejection | None) -> dict[str, Any]:
    assert isinstance(outcome, Rejection), outcome
    return json.loads(outcome.as_tool_content())


def prepared(catalog: list[ToolSpec], name: str, arguments: dict[str, Any]) -> PreparedCall:
    outcome = check_schema(call(name, arguments), catalog)
    assert isinstance(outcome, PreparedCall), outcome
    return outcome


def content(layer: str, field: str | None, message: str, fix: str) -> dict[str, Any]:
    return {
        "error": "invalid_tool_call",
        "layer": layer,
        "field": field,
        "message": message,
        "fix": fix,
    }


# ---- schema layer ----------------------------------------------------------------------


async def test_unknown_tool_names_closest_and_all_tools(catalog: list[ToolSpec]) -> None:
    outcome = check_schema(call("get_ordr", {}), catalog)
    assert isinstance(outcome, Rejection)
    assert (outcome.kind, outcome.layer, outcome.failure_class) == (
        "unknown_tool",
        "schema",
        "tool_hallucination",
    )
    assert rejected(outcome) == content(
        "schema",
        None,
        "Unknown tool 'get_ordr'. Did you mean: get_order, list_orders, refund_order?"
        " Available tools: add_ticket_note, create_ticket, get_customer, get_order,"
        " list_orders, refund_order, search_customers, send_email, update_ticket.",
        "call get_order (exact name) instead",
    )


async def test_arguments_that_are_not_a_json_object(catalog: list[ToolSpec]) -> None:
    broken = rejected(check_schema(call("get_order", '{"order_id": "ORD-10'), catalog))
    assert broken == content(
        "schema",
        None,
        "get_order was not called: its arguments are not valid JSON:"
        " Unterminated string starting at (character 13).",
        'send one JSON object: {"order_id": string}',
    )
    array = rejected(check_schema(call("get_order", "[1, 2]"), catalog))
    assert array["message"] == (
        "get_order was not called: its arguments must be a JSON object, not [1, 2]."
    )
    nan = rejected(check_schema(call("get_order", '{"order_id": NaN}'), catalog))
    assert "NaN is not a JSON number" in nan["message"]


async def test_pattern_violation_shows_pattern_and_example(catalog: list[ToolSpec]) -> None:
    outcome = check_schema(call("get_order", {"order_id": "ORD-10"}), catalog)
    assert isinstance(outcome, Rejection)
    assert (outcome.kind, outcome.failure_class) == ("schema", "schema_violation")
    assert outcome.issues[0].keyword == "pattern"
    assert rejected(outcome) == content(
        "schema",
        "order_id",
        "get_order was not called: its arguments do not match its input schema."
        " order_id: 'ORD-10' does not match '^ORD-\\d{4}$'",
        "order_id: expected e.g. ORD-1042",
    )


async def test_trailing_newline_does_not_satisfy_dollar_anchor(catalog: list[ToolSpec]) -> None:
    """Python's ``$`` matches before a final newline; JSON Schema's (and the server's) not."""
    outcome = check_schema(call("get_order", {"order_id": "ORD-1042\n"}), catalog)
    assert rejected(outcome)["field"] == "order_id"


async def test_every_error_is_reported_best_first(catalog: list[ToolSpec]) -> None:
    arguments = {"order_id": "ORD-1042", "amount": 50.123, "reason": "broken"}
    outcome = check_schema(call("refund_order", arguments), catalog)
    assert isinstance(outcome, Rejection)
    assert [(i.field, i.keyword) for i in outcome.issues] == [
        ("amount", "multipleOf"),
        ("reason", "enum"),
    ]
    assert outcome.issues[0].text() == (
        "amount: 50.123 is not a multiple of 0.01 — use at most 2 decimals, e.g. 50.12"
    )
    assert rejected(outcome) == content(
        "schema",
        "amount",
        "refund_order was not called: its arguments do not match its input schema."
        " amount: 50.123 is not a multiple of 0.01;"
        " reason: 'broken' is not one of"
        " ['damaged', 'not_received', 'wrong_item', 'changed_mind', 'other']",
        "amount: use at most 2 decimals, e.g. 50.12;"
        " reason: use one of: damaged, not_received, wrong_item, changed_mind, other",
    )


async def test_missing_required_and_wrong_type(catalog: list[ToolSpec]) -> None:
    missing = rejected(check_schema(call("refund_order", {"order_id": "ORD-1042"}), catalog))
    assert missing == content(
        "schema",
        "amount",
        "refund_order was not called: its arguments do not match its input schema."
        " amount: required but missing; reason: required but missing",
        "amount: add it (number: Amount in USD, at most 2 decimals, e.g. 42.00.);"
        " reason: add it (one of damaged, not_received, wrong_item, changed_mind, other:"
        " Why the customer is refunded.)",
    )
    wrong = rejected(check_schema(call("search_customers", {"query": "x", "limit": "5"}), catalog))
    assert wrong == content(
        "schema",
        "limit",
        "search_customers was not called: its arguments do not match its input schema."
        ' limit: expected integer, got string "5"',
        "limit: send 5 as a JSON number, without quotes",
    )


async def test_nullable_enum_explains_the_branch_the_value_was_meant_for(
    catalog: list[ToolSpec],
) -> None:
    typo = check_schema(
        call("list_orders", {"customer_id": "CUS-1001", "status": "shiped"}), catalog
    )
    assert isinstance(typo, Rejection)
    assert typo.issues[0].fix == (
        "use one of: pending, paid, shipped, delivered, cancelled, refunded"
        " (did you mean 'shipped'?)"
    )
    number = check_schema(call("list_orders", {"customer_id": "CUS-1001", "status": 3}), catalog)
    assert isinstance(number, Rejection)
    assert number.issues[0].problem == (
        "expected one of pending, paid, shipped, delivered, cancelled, refunded or null,"
        " got integer 3"
    )


@pytest.mark.parametrize("amount", [0.07, 0.14, 0.29, 0.57, 1.1, 42.0, 9999.99, 10000])
async def test_multiple_of_accepts_two_decimal_amounts(
    catalog: list[ToolSpec], amount: float
) -> None:
    """jsonschema's float division rejects 0.07, 0.14, 0.29, 0.57 for multipleOf 0.01."""
    arguments = {"order_id": "ORD-1042", "amount": amount, "reason": "damaged"}
    assert isinstance(check_schema(call("refund_order", arguments), catalog), PreparedCall)


@pytest.mark.parametrize("amount", [0.123, 0.001, 5.2700000000000005, 42.005])
async def test_multiple_of_rejects_a_third_decimal(catalog: list[ToolSpec], amount: float) -> None:
    arguments = {"order_id": "ORD-1042", "amount": amount, "reason": "damaged"}
    outcome = check_schema(call("refund_order", arguments), catalog)
    assert isinstance(outcome, Rejection)
    assert outcome.issues[0].keyword == "multipleOf"
    assert "use at most 2 decimals" in outcome.hint


async def test_validator_compiles_each_schema_once(catalog: list[ToolSpec]) -> None:
    validator = Validator(catalog)
    for order in ("ORD-1042", "ORD-1043", "bad"):
        validator.check_schema(call("get_order", {"order_id": order}))
    assert list(validator._compiled) == ["get_order"]


# ---- semantic layer --------------------------------------------------------------------


def refund(catalog: list[ToolSpec], order_id: str, amount: float) -> PreparedCall:
    return prepared(
        catalog, "refund_order", {"order_id": order_id, "amount": amount, "reason": "damaged"}
    )


async def test_lookups_resolve_references_to_the_call(
    catalog: list[ToolSpec], refund_policy: ToolPolicy
) -> None:
    plan = plan_lookups(refund(catalog, "ORD-1042", 10.0), refund_policy, catalog)
    assert plan == [LookupRequest("order", "support_desk", "get_order", {"order_id": "ORD-1042"})]


async def test_literal_and_escaped_lookup_arguments(catalog: list[ToolSpec]) -> None:
    policy = ToolPolicy.model_validate(
        {
            "lookups": [
                {"name": "fixed", "tool": "get_order", "arguments": {"order_id": "ORD-1043"}},
                {"name": "dollar", "tool": "search_customers", "arguments": {"query": "$$x"}},
            ],
            "checks": [{"argument": "order_id", "exists": "fixed"}],
        }
    )
    plan = plan_lookups(refund(catalog, "ORD-1042", 1.0), policy, catalog)
    assert isinstance(plan, list)
    assert [r.arguments for r in plan] == [{"order_id": "ORD-1043"}, {"query": "$x"}]


async def test_existing_order_within_limits_passes(
    catalog: list[ToolSpec], refund_policy: ToolPolicy, desk: MCPServer
) -> None:
    call_ = refund(catalog, "ORD-1042", 42.0)
    plan = plan_lookups(call_, refund_policy, catalog)
    assert isinstance(plan, list)
    results = await run_lookups(desk, plan)
    assert results["order"].ok and results["order"].data is not None
    assert results["order"].data["refundable"] == 42.0
    assert check_semantics(call_, refund_policy, results, NOW) is None


async def test_unknown_order_is_refused_with_what_the_lookup_said(
    catalog: list[ToolSpec], refund_policy: ToolPolicy, desk: MCPServer
) -> None:
    call_ = refund(catalog, "ORD-9999", 10.0)
    plan = plan_lookups(call_, refund_policy, catalog)
    assert isinstance(plan, list)
    outcome = check_semantics(call_, refund_policy, await run_lookups(desk, plan), NOW)
    assert isinstance(outcome, Rejection)
    assert (outcome.kind, outcome.layer, outcome.failure_class) == (
        "semantic",
        "semantic",
        "semantic_violation",
    )
    assert len(outcome.issues) == 1  # the max/date checks that use the lookup add nothing
    assert rejected(outcome) == content(
        "semantic",
        "order_id",
        "refund_order was not called: order_id: ORD-9999 does not exist (get_order said:"
        " Order ORD-9999 does not exist. Use list_orders with the customer ID to see that"
        " customer's orders.)",
        "order_id: use an id returned by a search/list tool",
    )


async def test_amount_above_refundable_and_cap(
    catalog: list[ToolSpec], refund_policy: ToolPolicy, desk: MCPServer
) -> None:
    call_ = refund(catalog, "ORD-1042", 150.0)
    plan = plan_lookups(call_, refund_policy, catalog)
    assert isinstance(plan, list)
    outcome = check_semantics(call_, refund_policy, await run_lookups(desk, plan), NOW)
    assert rejected(outcome) == content(
        "semantic",
        "amount",
        "refund_order was not called: amount: 150.0 is more than the maximum 42"
        " ($order.refundable); amount: 150.0 is more than the maximum 100",
        "amount: refund at most the order's refundable amount (see get_order);"
        " amount: refunds above 100.00 need a supervisor",
    )


def order_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"order_id": "ORD-1042", "refundable": 42.0}
    data.update({"delivered_at": "2026-11-06", **changes})
    return data


async def test_date_window_on_looked_up_value(
    catalog: list[ToolSpec], refund_policy: ToolPolicy
) -> None:
    call_ = refund(catalog, "ORD-1042", 10.0)
    lookups = {"order": LookupResult(ok=True, data=order_data())}
    assert check_semantics(call_, refund_policy, lookups, NOW) is None
    late = check_semantics(call_, refund_policy, lookups, datetime(2027, 1, 1, tzinfo=UTC))
    assert rejected(late) == content(
        "semantic",
        "$order.delivered_at",
        "refund_order was not called: $order.delivered_at: 2026-11-06 is before the earliest"
        " allowed date 2026-12-02 (-30d from 2027-01-01)",
        "$order.delivered_at: only orders delivered in the last 30 days can be refunded",
    )
    undelivered = {"order": LookupResult(ok=True, data=order_data(delivered_at=None))}
    outcome = check_semantics(call_, refund_policy, undelivered, NOW)
    assert isinstance(outcome, Rejection)
    assert outcome.issues[0].problem == "is not set, so it cannot be checked against a date"


async def test_failed_lookup_referenced_by_a_bound_reads_as_not_found(
    catalog: list[ToolSpec],
) -> None:
    policy = ToolPolicy.model_validate(
        {
            "lookups": [{"name": "order", "tool": "get_order", "arguments": {"id": "$order_id"}}],
            "checks": [{"argument": "amount", "max": "$order.refundable"}],
        }
    )
    failed = {"order": LookupResult(ok=False, error="Error executing tool get_order: gone.")}
    outcome = check_semantics(refund(catalog, "ORD-1041", 1.0), policy, failed, NOW)
    assert isinstance(outcome, Rejection)
    assert outcome.field == "order_id"
    assert outcome.message == (
        "refund_order was not called: order_id: ORD-1041 does not exist (get_order said: gone.)"
    )


async def test_references_into_lookup_data_that_are_null_or_wrong(
    catalog: list[ToolSpec], refund_policy: ToolPolicy
) -> None:
    call_ = refund(catalog, "ORD-1042", 10.0)
    null = {"order": LookupResult(ok=True, data=order_data(refundable=None))}
    outcome = check_semantics(call_, refund_policy, null, NOW)
    assert isinstance(outcome, Rejection)
    assert outcome.issues[0].problem == "cannot be checked: $order.refundable is null, not a number"
    typo = ToolPolicy.model_validate(
        {
            "lookups": refund_policy.model_dump()["lookups"],
            "checks": [{"argument": "amount", "max": "$order.refundible"}],
        }
    )
    with pytest.raises(PolicyError, match=r"\$order\.refundible is not in the result of get_order"):
        check_semantics(call_, typo, {"order": LookupResult(ok=True, data=order_data())}, NOW)


SYNTHETIC = ToolSpec(
    server="reports",
    name="export_refunds",
    input_schema={
        "type": "object",
        "properties": {
            "since": {"type": "string"},
            "until": {"type": "string"},
            "min_amount": {"type": "number"},
            "max_amount": {"type": "number"},
            "filter": {"type": "object", "properties": {"limit": {"type": "integer"}}},
        },
        "required": ["since", "min_amount"],
    },
)
SYNTHETIC_POLICY = ToolPolicy.model_validate(
    {
        "checks": [
            {"argument": "since", "min_date": "2026-01-01", "max_date": "+0d"},
            {"argument": "until", "min_date": "$since", "max_date": "+7d"},
            {"argument": "since", "max_date": "$until"},  # skipped when until is not sent
            {"argument": "max_amount", "min": "$min_amount"},
            {"argument": "filter.limit", "min": 1, "max": 500},
        ]
    }
)


def export(arguments: dict[str, Any]) -> Rejection | None:
    call_ = prepared([SYNTHETIC], "export_refunds", arguments)
    return check_semantics(call_, SYNTHETIC_POLICY, {}, NOW)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"since": "2026-03-01", "min_amount": 0}, None),
        ({"since": "2026-03-01T10:00:00Z", "min_amount": 0, "until": "2026-11-27"}, None),
        ({"since": "2025-12-31", "min_amount": 0}, "since: 2025-12-31 is before the earliest"
         " allowed date 2026-01-01 (2026-01-01)"),
        ({"since": "2026-11-21", "min_amount": 0}, "since: 2026-11-21 is after the latest"
         " allowed date 2026-11-20 (+0d from 2026-11-20)"),
        ({"since": "2026-05-01", "until": "2026-04-30", "min_amount": 0},
         "until: 2026-04-30 is before the earliest allowed date 2026-05-01 ($since);"
         " since: 2026-05-01 is after the latest allowed date 2026-04-30 ($until)"),
        ({"since": "yesterday", "min_amount": 0},
         "since: expected an ISO date (YYYY-MM-DD), got 'yesterday'"),
        ({"since": "2026-03-01", "min_amount": 10, "max_amount": 5},
         "max_amount: 5 is less than the minimum 10 ($min_amount)"),
        ({"since": "2026-03-01", "min_amount": 0, "filter": {"limit": 0}},
         "filter.limit: 0 is less than the minimum 1"),
        ({"since": "2026-03-01", "min_amount": 0, "filter": {}}, None),
    ],
)  # fmt: skip
def test_date_and_number_checks_on_arguments(
    arguments: dict[str, Any], expected: str | None
) -> None:
    outcome = export(arguments)
    if expected is None:
        assert outcome is None
    else:
        assert outcome is not None
        assert outcome.message == f"export_refunds was not called: {expected}"


async def test_lookup_argument_the_lookup_tool_would_refuse(catalog: list[ToolSpec]) -> None:
    policy = ToolPolicy.model_validate(
        {
            "lookups": [
                {"name": "customer", "tool": "get_customer", "arguments": {"customer_id": "$query"}}
            ],
            "checks": [{"argument": "query", "exists": "customer"}],
        }
    )
    outcome = plan_lookups(
        prepared(catalog, "search_customers", {"query": "lopez"}), policy, catalog
    )
    assert isinstance(outcome, Rejection)
    assert outcome.kind == "semantic" and outcome.field == "query"
    assert "cannot be looked up with get_customer" in outcome.message


async def test_lookup_with_a_tool_that_writes_is_a_profile_error(catalog: list[ToolSpec]) -> None:
    policy = ToolPolicy.model_validate(
        {
            "lookups": [{"name": "r", "tool": "refund_order", "arguments": {"order_id": "x"}}],
            "checks": [{"argument": "order_id", "exists": "r"}],
        }
    )
    with pytest.raises(ValueError, match="not annotated read-only"):
        plan_lookups(refund(catalog, "ORD-1042", 1.0), policy, catalog)
    with pytest.raises(PolicyError, match=r"tools\.refund_order\.lookups\.r"):
        check_policies({"refund_order": policy}, catalog)


async def test_policy_mistakes_are_found_at_the_start_of_a_run(
    catalog: list[ToolSpec], refund_policy: ToolPolicy
) -> None:
    check_policies({"refund_order": refund_policy}, catalog)
    broken = {
        "refund_ordr": ToolPolicy(roles=["supervisor"]),
        "refund_order": ToolPolicy.model_validate(
            {
                "lookups": [{"name": "order", "tool": "get_ordr", "arguments": {"x": "$nope"}}],
                "checks": [
                    {"argument": "amount", "max": "$order.refundable", "exists": "ordr"},
                    {"argument": "amount"},
                    {"argument": "amount", "min_date": "last week"},
                ],
            }
        ),
    }
    with pytest.raises(PolicyError) as info:
        check_policies(broken, catalog)
    message = str(info.value)
    assert "\n" not in message  # one line: it ends up in a RunResult and a log line
    problems = message.removeprefix("invalid tool policy in the profile: ").split("; ")
    assert problems == [
        "tools.refund_ordr: no such tool on the run's servers"
        " (did you mean refund_order, get_order?)",
        "tools.refund_order.lookups.order: tool 'get_ordr' is not offered by the run's servers"
        " (did you mean get_order, list_orders, refund_order?)",
        "tools.refund_order.lookups.order: $nope names no argument or lookup"
        " (have: amount, note, order_id, reason)",
        "tools.refund_order.checks[0]: exists='ordr' names no lookup of this policy",
        "tools.refund_order.checks[1]: the check on 'amount' has no condition",
        "tools.refund_order.checks[2]: 'last week' is not an ISO date, an offset like -30d"
        " or a $reference",
    ]


# ---- authorization layer ---------------------------------------------------------------


async def test_authorization(catalog: list[ToolSpec], refund_policy: ToolPolicy) -> None:
    call_ = refund(catalog, "ORD-1042", 10.0)
    agent = Principal(id="maria", roles=["agent"])
    viewer = Principal(id="tom", roles=["viewer"])
    assert check_authorization(call_, refund_policy, agent) is None
    assert check_authorization(call_, None, viewer) is None
    assert check_authorization(call_, ToolPolicy(), viewer) is None
    outcome = check_authorization(call_, refund_policy, viewer)
    assert isinstance(outcome, Rejection)
    assert (outcome.kind, outcome.layer, outcome.failure_class) == (
        "authorization",
        "authorization",
        "unauthorized",
    )
    assert rejected(outcome) == content(
        "authorization",
        None,
        "refund_order was not called: it requires one of the roles [supervisor, agent];"
        " principal 'tom' has roles [viewer].",
        "do not retry refund_order: a human with one of the roles [supervisor, agent] must do"
        " it; tell the user what should be done and why",
    )
    nobody = check_authorization(call_, refund_policy, Principal(id="anonymous"))
    assert nobody is not None and "has roles [none]" in nobody.message
