"""The one check pipeline, on the paths that need no workflow context: the schema layer (what
the turn's first pass and the ``decide`` validator run) and authorization for a tool whose
policy has no semantic checks. The lookups' path runs in a workflow and is covered by the
integration tests of validation and approvals."""

from __future__ import annotations

import json

from keel.contracts import (
    Check,
    Lookup,
    Principal,
    ServerSettings,
    ToolCall,
    ToolPolicy,
    ToolSpec,
)
from workflows.tools.check import CheckedCall, CheckPipeline
from workflows.tools.validation import PreparedCall, Rejection

REFUND = ToolSpec(
    server="desk",
    name="refund_order",
    input_schema={
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}},
        "required": ["order_id", "amount"],
        "additionalProperties": False,
    },
)
GET = ToolSpec(server="desk", name="get_order", input_schema={"type": "object"})
POLICIES = {"refund_order": ToolPolicy(roles=["supervisor"])}


def pipeline(roles: list[str]) -> CheckPipeline:
    return CheckPipeline(
        catalog=[REFUND, GET],
        catalog_all=[REFUND, GET],
        policies=POLICIES,
        servers={"desk": ServerSettings(name="desk")},
        principal=Principal(id="alice", roles=roles),
    )


def call(name: str, **arguments: object) -> ToolCall:
    return ToolCall(id="c1", name=name, arguments=json.dumps(arguments))


def test_schema_refuses_an_unknown_tool_and_bad_arguments() -> None:
    checks = pipeline(["supervisor"])
    unknown = checks.schema(call("refund_ordr", order_id="ORD-1", amount=1))
    assert isinstance(unknown, Rejection) and unknown.kind == "unknown_tool"
    assert "refund_order" in unknown.message
    wrong = checks.schema(call("refund_order", order_id="ORD-1", amount="ten"))
    assert isinstance(wrong, Rejection) and wrong.layer == "schema" and wrong.field == "amount"


def test_schema_prepares_a_valid_call() -> None:
    prepared = pipeline([]).schema(call("refund_order", order_id="ORD-1", amount=1.5))
    assert isinstance(prepared, PreparedCall)
    assert prepared.tool is REFUND and prepared.arguments == {"order_id": "ORD-1", "amount": 1.5}


async def test_check_runs_authorization_after_the_schema() -> None:
    refused = await pipeline(["agent"]).check(call("refund_order", order_id="ORD-1", amount=1))
    assert isinstance(refused, Rejection) and refused.layer == "authorization"
    assert "supervisor" in refused.message
    allowed = await pipeline(["supervisor"]).check(call("refund_order", order_id="ORD-1", amount=1))
    assert isinstance(allowed, CheckedCall)
    assert allowed.prepared.arguments == {"order_id": "ORD-1", "amount": 1}
    assert allowed.lookups == {} and allowed.context() == {}


async def test_check_stops_at_the_schema_layer() -> None:
    # An authorization failure would be reported if the schema were skipped.
    refused = await pipeline(["agent"]).check(call("refund_order", order_id="ORD-1"))
    assert isinstance(refused, Rejection) and refused.layer == "schema"


async def test_authorization_comes_before_the_lookups() -> None:
    """A principal without the role is refused before any semantic lookup: no lookup activity
    is scheduled (outside a workflow one could not run at all) and the refusal carries no
    looked-up data."""
    policy = ToolPolicy(
        roles=["supervisor"],
        lookups=[Lookup(name="order", tool="get_order", arguments={"order_id": "$order_id"})],
        checks=[Check(argument="order_id", exists="order"),
                Check(argument="amount", max="$order.refundable")],
    )  # fmt: skip
    checks = CheckPipeline(
        catalog=[REFUND, GET],
        catalog_all=[REFUND, GET.model_copy(update={"annotations": {"read_only_hint": True}})],
        policies={"refund_order": policy},
        servers={"desk": ServerSettings(name="desk")},
        principal=Principal(id="bob", roles=["agent"]),
    )
    refused = await checks.check(call("refund_order", order_id="ORD-1042", amount=500))
    assert isinstance(refused, Rejection) and refused.layer == "authorization"
    assert "refundable" not in refused.message and "ORD-1042" not in refused.message
