"""The approval digest: what a decision names, computed the same way by anyone."""

from __future__ import annotations

import hashlib

from keel.contracts import approval_digest


def test_digest_is_sha256_of_the_canonical_json_of_server_tool_and_arguments() -> None:
    digest = approval_digest("support_desk", "refund_order", {"order_id": "ORD-1", "amount": 2.5})
    canonical = (
        '{"arguments":{"amount":2.5,"order_id":"ORD-1"},"server":"support_desk",'
        '"tool":"refund_order"}'
    )
    assert digest == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def test_digest_ignores_key_order_and_sees_every_change() -> None:
    base = approval_digest("desk", "refund_order", {"a": 1, "b": {"c": [1, 2]}})
    assert approval_digest("desk", "refund_order", {"b": {"c": [1, 2]}, "a": 1}) == base
    assert approval_digest("desk", "refund_order", {"a": 2, "b": {"c": [1, 2]}}) != base
    assert approval_digest("desk", "send_email", {"a": 1, "b": {"c": [1, 2]}}) != base
    assert approval_digest("other", "refund_order", {"a": 1, "b": {"c": [1, 2]}}) != base
    assert approval_digest("desk", "refund_order", {"a": 1, "b": {"c": [2, 1]}}) != base
