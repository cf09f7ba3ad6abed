"""Progress templates (``[tools.<name>.progress]``): how a tool call reads in ``keel run`` and
``keel watch``. Pure: the text is a function of the call's arguments, its result and the
profile's templates; a bad template is a profile error found when the profile loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.contracts import ToolPolicy, ToolSpec
from keel.contracts.errors import ProfileError
from keel.runtime.profiles import load_profile_file
from tests.helpers import REPO
from workflows.report.progress_text import (
    approval_text,
    call_text,
    done_text,
    result_fields,
    template_problems,
)


def policy(**templates: str) -> ToolPolicy:
    return ToolPolicy.model_validate({"progress": templates})


def test_templates_fill_from_arguments_and_results() -> None:
    refund = policy(
        call="refunding ${amount:.2f} on {order_id}…",
        done="refund {refund_id}: ${amount:.2f}",
        approval="refund_order ${amount:.2f}",
    )
    arguments = {"order_id": "ORD-1042", "amount": 42}
    assert call_text("refund_order", arguments, refund) == "refunding $42.00 on ORD-1042…"
    assert approval_text("refund_order", arguments, refund) == "refund_order $42.00"
    result = {"refund_id": "RF-1", "amount": 42.0, "status": "issued"}
    assert done_text("refund_order", arguments, refund, ok=True, text="", data=result) == (
        "refund RF-1: $42.00"
    )
    orders = policy(done="found {count} orders")
    listing = {"customer_id": "CUS-1", "orders": [{}, {}, {}]}
    assert done_text("list_orders", {}, orders, ok=True, text="", data=listing) == (
        "found 3 orders"
    )


def test_templates_fall_back_to_generic_text() -> None:
    arguments = {"order_id": "ORD-1042"}
    assert call_text("get_order", arguments, None) == "calling get_order(order_id=ORD-1042)"
    # An optional argument the call left out, a spec that does not fit the value.
    assert call_text("get_order", arguments, policy(call="{note}")) == (
        "calling get_order(order_id=ORD-1042)"
    )
    assert approval_text("get_order", arguments, policy(approval="{order_id:.2f}")) == (
        "get_order(order_id=ORD-1042)"
    )
    assert done_text("get_order", arguments, None, ok=True, text="{}", data={}) == "get_order done"
    assert done_text("get_order", arguments, None, ok=False, text="Order 'X' not found.\nmore") == (
        "get_order failed: Order 'X' not found."
    )
    long = {"body": "x" * 500}
    assert len(call_text("send_email", long, None)) <= 200


def test_count_comes_from_a_list_result_or_the_only_list_field() -> None:
    assert result_fields([1, 2])["count"] == 2
    assert result_fields({"orders": [1, 2, 3], "customer_id": "C"})["count"] == 3
    two_lists = result_fields({"items": [1], "refunds": [1, 2]})
    assert "count" not in two_lists
    assert (two_lists["items_count"], two_lists["refunds_count"]) == (1, 2)
    assert result_fields("text") == {}


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("looking up {0}", "must be a plain name"),
        ("looking up {}", "must be a plain name"),
        ("looking up {order.id}", "must be a plain name"),
        ("looking up {order_id", "expected '}'"),
        ("paid {amount:zz}", "fits neither numbers nor text"),
        ("   ", "must not be empty"),
    ],
)
def test_a_bad_template_is_a_profile_error(tmp_path: Path, template: str, problem: str) -> None:
    source = (REPO / "profiles" / "support.toml").read_text()
    path = tmp_path / "support.toml"
    path.write_text(source + f'\n[tools.update_ticket.progress]\ncall = "{template}"\n')
    with pytest.raises(ProfileError) as info:
        load_profile_file(path)
    assert "tools.update_ticket.progress.call" in str(info.value)
    assert problem in str(info.value)


def test_template_placeholders_must_name_arguments() -> None:
    catalog = [
        ToolSpec(
            server="support_desk",
            name="get_order",
            input_schema={"type": "object", "properties": {"order_id": {"type": "string"}}},
        )
    ]
    assert (
        template_problems({"get_order": policy(call="{order_id}", done="{status}")}, catalog) == []
    )
    [problem] = template_problems({"get_order": policy(approval="{orderid}")}, catalog)
    assert problem == (
        "tools.get_order.progress.approval: {orderid} names no argument of get_order"
        " (have: order_id)"
    )
