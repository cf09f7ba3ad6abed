"""Approval grants, minted by the worker for the tool calls a human approved.

The workflow marks an approved call with ``_meta["io.keel/approval"] = {"id", "digest",
"by"}`` (the decision's id, the digest it approves, the approver). The worker's
MCP interceptor (activities/mcp.py) hands every call-tool request to :meth:`GrantMinter.attach`
before it leaves: the mark is removed — it is for the worker, not the server — and replaced by
``_meta["io.keel/grant"]``, a JWT of type ``keel-grant+jwt`` signed with the worker's key
(``Settings.signing_key``), valid :data:`GRANT_TTL_SECONDS`, whose claims name the run (from
``activity.info()``, never from the workflow's input), the server as the profile names it, the
tool, the digest, the approver and the decision. A server that requires approval for the tool
verifies it (mcp_servers/shared/auth/grants.py). Each attempt gets a fresh grant for the same
decision; the server binds the decision to the call's idempotency key, so retries replay.

The worker refuses to mint — a non-retryable ``GrantRefused``, one line — when the digest of
what is about to be sent (server, tool and arguments, ``keel.contracts.approval_digest``)
differs from the approved one: whatever went wrong between decision and call, the grant never
covers arguments nobody approved. Without a signing key no grant is sent (a server that
requires one refuses the call). A grant already in a request's ``_meta`` is always dropped:
only the worker mints them. See docs/security.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio.exceptions import ApplicationError
from temporalio.worker import ExecuteActivityInput

from keel.contracts import approval_digest, names
from keel.runtime.config import MCPServerTarget, Settings
from keel.runtime.keys import TokenSigner

GRANT_TTL_SECONDS = 120
GRANT_REFUSED = "GrantRefused"


def grant_refused(message: str) -> ApplicationError:
    """The worker will not vouch for this call: not retried (a retry would send the same)."""
    return ApplicationError(message, type=GRANT_REFUSED, non_retryable=True)


def audience(server: str, target: MCPServerTarget | None) -> str:
    """The grant's ``aud``: the server's URL, as the worker reaches it (a stdio server has
    none: ``stdio:<name>``, which such a server must be told to accept)."""
    if target is not None and target.url:
        return target.url
    return f"stdio:{server}"


class GrantMinter:
    """Turns approval marks into signed grants (``signer`` None: marks are dropped)."""

    def __init__(
        self, signer: TokenSigner | None, servers: Mapping[str, MCPServerTarget] | None = None
    ) -> None:
        self.signer = signer
        self.servers = dict(servers or {})

    @classmethod
    def from_settings(cls, settings: Settings) -> GrantMinter:
        """Signing with ``settings.signing_key`` as ``settings.auth_issuer``; a key that
        cannot be read is a ConfigError (the worker does not start)."""
        if settings.signing_key is None:
            return cls(None, settings.mcp_servers)
        signer = TokenSigner.from_file(settings.signing_key, settings.auth_issuer)
        return cls(signer, settings.mcp_servers)

    def attach(self, server: str, run: str | None, input: ExecuteActivityInput) -> None:
        """Replace the call-tool request's approval mark by a grant for run ``run``."""
        request = input.args[0] if input.args else None
        meta = request.get("meta") if isinstance(request, dict) else None
        if not isinstance(request, dict) or not isinstance(meta, dict):
            return
        if names.META_APPROVAL not in meta and names.META_GRANT not in meta:
            return
        meta = dict(meta)
        approval = meta.pop(names.META_APPROVAL, None)
        meta.pop(names.META_GRANT, None)
        if approval is not None and self.signer is not None:
            meta[names.META_GRANT] = self.mint(server, run, request, approval)
        input.args = [{**request, "meta": meta or None}, *input.args[1:]]

    def mint(
        self, server: str, run: str | None, request: Mapping[str, Any], approval: object
    ) -> str:
        """The grant for ``request`` as it will be sent, or ``GrantRefused``."""
        assert self.signer is not None
        tool = request.get("name")
        arguments = request.get("arguments") or {}
        if not run or not isinstance(tool, str) or not isinstance(arguments, dict):
            raise grant_refused(
                f"not minting an approval grant: malformed request to {server!r}"
                " (or not from a workflow run)"
            )
        decision, approved, by = _approval(approval, tool)
        sent = approval_digest(server, tool, arguments)
        if sent != approved:
            raise grant_refused(
                f"not minting an approval grant for {tool} on {server!r}: the arguments sent"
                f" ({sent}) are not the ones approved in {decision!r} ({approved})"
            )
        claims = {
            "aud": audience(server, self.servers.get(server)),
            names.CLAIM_RUN: run,
            names.CLAIM_SERVER: server,
            names.CLAIM_TOOL: tool,
            names.CLAIM_DIGEST: approved,
            names.CLAIM_APPROVER: by,
            names.CLAIM_DECISION: decision,
        }
        return self.signer.sign(claims, typ=names.TYP_GRANT, ttl_seconds=GRANT_TTL_SECONDS)


def _approval(approval: object, tool: str) -> tuple[str, str, str]:
    """(decision id, approved digest, approver) of a well-formed approval mark."""
    if isinstance(approval, dict):
        decision, digest, by = approval.get("id"), approval.get("digest"), approval.get("by")
        if isinstance(decision, str) and decision and isinstance(digest, str):
            return decision, digest, by if isinstance(by, str) else ""
    raise grant_refused(
        f"not minting an approval grant for {tool}: _meta {names.META_APPROVAL!r} must be"
        ' {"id": …, "digest": …, "by": …}'
    )
