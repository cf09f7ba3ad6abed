"""What Keel believes about a server's tools: their class, and whether a call may be retried.

Pure functions shared by the check pipeline (a semantic lookup runs before any approval, so
its tool must be read-only by the profile's word or a believed annotation), the approval
policy (workflows/approvals/policy.py) and the tool-call activities (one attempt for a write
to a server that does not deduplicate).

Who is believed:

- a *trusted* server's annotations (``readOnlyHint``, ``destructiveHint``, ``openWorldHint``,
  ``idempotentHint``);
- an untrusted server's ``readOnlyHint`` / ``idempotentHint`` only when the profile sets the
  server's ``approval = "writes"`` (it vouches that the server's read-only tools are reads);
- the profile's tool policy (``reversibility``) always, over any annotation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from keel.contracts import Reversibility, ServerSettings, ToolPolicy, ToolSpec


def hints_believed(server: ServerSettings) -> bool:
    """Whether the server's read-only and idempotent hints are believed."""
    return server.trusted or server.approval_default == "writes"


def tool_class(tool: ToolSpec, server: ServerSettings, policy: ToolPolicy | None) -> Reversibility:
    """The tool's class: the profile's word first, then the annotations that are believed.

    On a trusted server a tool that is neither destructive nor open-world (it only adds to its
    own data) is reversible. Anything else not believed read-only is irreversible.
    """
    if policy is not None and policy.reversibility is not None:
        return policy.reversibility
    hints = tool.annotations
    if hints_believed(server) and hints.get("read_only_hint") is True:
        return "read"
    if (
        server.trusted
        and hints.get("destructive_hint") is False
        and hints.get("open_world_hint") is False
    ):
        return "reversible"
    return "irreversible"


def read_only_check(
    servers: Mapping[str, ServerSettings], policies: Mapping[str, ToolPolicy]
) -> Callable[[ToolSpec], bool]:
    """Whether a tool may run as a semantic lookup: its class is ``read``."""

    def is_read(tool: ToolSpec) -> bool:
        server = servers.get(tool.server)
        if server is None:
            return False
        return tool_class(tool, server, policies.get(tool.name)) == "read"

    return is_read


def retry_is_unsafe(
    server: ServerSettings, tool: ToolSpec, policy: ToolPolicy | None = None
) -> bool:
    """One attempt only: a write (not a read, not a believed idempotent tool) to a server that
    does not deduplicate by ``io.keel/idempotency-key`` could repeat its side effect."""
    if server.deduplicates:
        return False
    if tool_class(tool, server, policy) == "read":
        return False
    return not (hints_believed(server) and tool.annotations.get("idempotent_hint") is True)


def legacy_server(server: ServerSettings) -> ServerSettings:
    """How a server was treated before ``approval`` and ``deduplicates`` existed (runs recorded
    then replay with it): annotations' read-only hints believed, ``trusted`` deduplicating."""
    update: dict[str, Any] = {"deduplicates": server.trusted}
    if server.approval is None:
        update["approval"] = "writes"
    return server.model_copy(update=update)
