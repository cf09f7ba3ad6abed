"""Run-start profile checks: a semantic lookup must be a read the profile believes."""

from __future__ import annotations

from typing import Any

import pytest

from keel.contracts import Profile, ToolSpec
from workflows.agent.start import check_profile
from workflows.failures import RunFailed

CATALOG = [
    ToolSpec(
        server="third_party",
        name="get_order",
        input_schema={"type": "object", "properties": {"order_id": {"type": "string"}}},
        annotations={"read_only_hint": True},
    ),
    ToolSpec(
        server="third_party",
        name="refund_order",
        input_schema={"type": "object", "properties": {"order_id": {"type": "string"}}},
        annotations={"destructive_hint": True},
    ),
]


def profile(server: dict[str, Any], get_order: dict[str, Any] | None = None) -> Profile:
    tools: dict[str, Any] = {
        "refund_order": {
            "lookups": [
                {"name": "order", "tool": "get_order", "arguments": {"order_id": "$order_id"}}
            ],
            "checks": [{"argument": "order_id", "exists": "order"}],
        }
    }
    if get_order is not None:
        tools["get_order"] = get_order
    return Profile.model_validate(
        {
            "name": "p",
            "system_prompt": "s",
            "model": {"name": "m"},
            "servers": [{"name": "third_party", **server}],
            "tools": tools,
        }
    )


def test_lookup_on_an_untrusted_server_needs_the_profile_to_vouch() -> None:
    with pytest.raises(RunFailed) as raised:
        check_profile(profile({}), CATALOG)
    assert raised.value.failure_class == "config_error"
    assert "untrusted server 'third_party'" in raised.value.message
    assert '[tools.get_order] reversibility = "read"' in raised.value.message


@pytest.mark.parametrize(
    ("server", "get_order"),
    [({}, {"reversibility": "read"}), ({"trusted": True}, None), ({"approval": "writes"}, None)],
)
def test_lookup_the_profile_believes_is_accepted(
    server: dict[str, Any], get_order: dict[str, Any] | None
) -> None:
    assert accepted(profile(server, get_order))


def accepted(checked: Profile) -> bool:
    try:
        check_profile(checked, CATALOG)
    except RunFailed:
        return False
    return True
