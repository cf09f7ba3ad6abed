"""What Keel believes of a server's annotations: approval, lookups, retries (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from keel.contracts import ApprovalRule, ServerSettings, ToolPolicy, ToolSpec
from workflows.approvals.policy import call_needs_approval, needs_approval, reversibility
from workflows.tools.trust import legacy_server, read_only_check, retry_is_unsafe, tool_class

# A third-party tool that claims to be read-only but deletes things.
LIAR = {"read_only_hint": True, "destructive_hint": True}
READ = {"read_only_hint": True, "open_world_hint": False}
WRITE = {"read_only_hint": False, "destructive_hint": True, "idempotent_hint": False}


def tool(hints: dict[str, Any], name: str = "t") -> ToolSpec:
    return ToolSpec(server="desk", name=name, annotations=hints)


def server(**fields: Any) -> ServerSettings:
    return ServerSettings(name="desk", **fields)


def test_untrusted_read_only_hint_does_not_exempt_a_tool_from_approval() -> None:
    untrusted = server()
    kind = reversibility(tool(LIAR), untrusted, None)
    assert kind == "irreversible"
    assert needs_approval(kind, ApprovalRule(), {}) is True
    assert call_needs_approval(tool(LIAR), untrusted, None, {}) == ("irreversible", True)


@pytest.mark.parametrize(
    ("fields", "default"),
    [
        ({}, "all"),
        ({"trusted": True}, "writes"),
        ({"approval": "none"}, "none"),
        ({"trusted": True, "approval": "all"}, "all"),
    ],
)
def test_approval_default_follows_trust_unless_set(fields: dict[str, Any], default: str) -> None:
    assert server(**fields).approval_default == default


@pytest.mark.parametrize(
    ("fields", "policy", "hints", "waits"),
    [
        ({}, None, READ, True),  # untrusted: even a read waits
        ({}, ToolPolicy(reversibility="read"), READ, False),  # the profile vouches
        ({}, ToolPolicy.model_validate({"approval": {"required": "never"}}), WRITE, False),
        ({"approval": "writes"}, None, READ, False),  # the profile believes its read hints
        ({"approval": "writes"}, None, WRITE, True),
        ({"trusted": True}, None, READ, False),
        ({"trusted": True}, None, WRITE, True),
        ({"trusted": True, "approval": "all"}, None, READ, True),
        ({"trusted": True, "approval": "none"}, None, WRITE, False),
        (
            {"approval": "none"},
            ToolPolicy.model_validate({"approval": {"required": "always"}}),
            READ,
            True,
        ),
    ],
)
def test_which_calls_wait(
    fields: dict[str, Any], policy: ToolPolicy | None, hints: dict[str, Any], waits: bool
) -> None:
    assert call_needs_approval(tool(hints), server(**fields), policy, {})[1] is waits


def test_lookups_need_a_read_class_the_profile_believes() -> None:
    is_read = read_only_check({"desk": server()}, {})
    assert is_read(tool(READ)) is False
    vouched = read_only_check({"desk": server()}, {"t": ToolPolicy(reversibility="read")})
    assert vouched(tool(READ)) is True
    assert read_only_check({"desk": server(trusted=True)}, {})(tool(READ)) is True
    assert read_only_check({}, {})(tool(READ)) is False  # a server the run does not know


@pytest.mark.parametrize(
    ("fields", "hints", "unsafe"),
    [
        ({"trusted": True}, WRITE, True),  # believing annotations is not deduplicating
        ({"trusted": True, "deduplicates": True}, WRITE, False),
        ({"deduplicates": True}, WRITE, False),
        ({"trusted": True}, READ, False),
        ({}, READ, True),  # an untrusted server's read may be a write
        ({"approval": "writes"}, READ, False),
        ({"approval": "writes"}, {**WRITE, "idempotent_hint": True}, False),
        ({}, {**WRITE, "idempotent_hint": True}, True),
    ],
)
def test_one_attempt_for_writes_to_servers_that_do_not_deduplicate(
    fields: dict[str, Any], hints: dict[str, Any], unsafe: bool
) -> None:
    assert retry_is_unsafe(server(**fields), tool(hints)) is unsafe


def test_a_policy_read_class_makes_retries_safe() -> None:
    assert retry_is_unsafe(server(), tool(WRITE), ToolPolicy(reversibility="read")) is False


@pytest.mark.parametrize("trusted", [True, False])
def test_legacy_servers_keep_the_old_meaning_of_trusted(trusted: bool) -> None:
    old = legacy_server(server(trusted=trusted))
    assert old.deduplicates is trusted
    assert tool_class(tool(READ), old, None) == "read"
    assert retry_is_unsafe(old, tool(WRITE)) is not trusted
