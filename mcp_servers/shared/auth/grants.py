"""Approval grants: a server's own proof that a human approved exactly this call.

A tool marked as requiring approval (``@ledger.idempotent(approval=True)``,
:mod:`mcp_servers.shared.ledger`) runs only if the request's ``_meta["io.keel/grant"]`` holds
a grant that :class:`GrantVerifier` accepts. Keel's worker mints one (``activities/grants.py``)
when the workflow sends a call a human approved: a JWT of type ``keel-grant+jwt``, signed with
the worker's key, valid 120 s, naming the run (``keel_run``), the server as the profile names
it (``keel_server``), the tool (``keel_tool``), the digest of the arguments
(``keel_digest``), the approver (``keel_approver``) and the decision (``keel_decision``).

The server checks, before any claim or effect: the signature against the grant keys
(``--grant-jwks`` / ``KEEL_GRANT_JWKS``), the type, ``exp``, ``iss`` and ``aud`` (the
server's own resource URL, or an extra audience), that the tool is the one called, that
``keel_digest`` equals :func:`keel.contracts.digest.approval_digest` of ``keel_server``, the
tool and the arguments *as received*, that the run is the run prefix of the request's
idempotency key (``<workflow_id>:<step>:<tool_call_id>``) and, on an authenticated request,
the access token's ``keel_run``. The ledger then records the decision with the claim, in one
transaction: a decision used with one idempotency key is refused with any other.

Every refusal is one line, ``<tool> needs an approval grant: <reason>``, answered as an
``is_error`` result. A server without grant keys refuses every call of such a tool: an
approval-requiring tool never runs unapproved. See docs/security.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context

from keel.contracts.digest import approval_digest
from keel.contracts.names import (
    CLAIM_APPROVER,
    CLAIM_DECISION,
    CLAIM_DIGEST,
    CLAIM_RUN,
    CLAIM_SERVER,
    CLAIM_TOOL,
    LOCAL_ISSUER,
    META_GRANT,
    TYP_GRANT,
)
from mcp_servers.shared.auth.jwks import KeySet, KeySetError, TokenRejected
from mcp_servers.shared.auth.resource import accepted_audiences, accepted_issuers, request_token
from mcp_servers.shared.config import ServerConfigError

GRANT_JWKS_ENV = "KEEL_GRANT_JWKS"
LOGGER_NAME = "mcp_servers.grants"
# The run part of an idempotency key is everything before ":<step>:<tool call id>".
_KEY_TAIL = re.compile(r"\d+:.+", re.DOTALL)

logger = logging.getLogger(LOGGER_NAME)


class GrantRefused(Exception):
    """A call without a valid grant for exactly it; the text says why in one line."""


@dataclass(frozen=True)
class GrantUse:
    """What an accepted grant names: the decision it carries out, and for whom."""

    run: str
    decision: str
    approver: str
    server: str
    jti: str
    expires_at: float


class GrantVerifier:
    """Checks approval grants against ``keys`` (None: no grant keys, every grant refused).

    ``audiences`` are the ``aud`` values the server answers to (its resource URL and any
    extra ones), ``issuers`` the accepted ``iss`` (the worker's ``KEEL_AUTH_ISSUER``).
    """

    def __init__(
        self,
        keys: KeySet | None,
        *,
        audiences: Sequence[str] = (),
        issuers: Sequence[str] = (LOCAL_ISSUER,),
    ) -> None:
        self.keys = keys
        self.audiences = tuple(audiences)
        self.issuers = tuple(issuers)

    def verify(
        self,
        grant: object,
        *,
        tool: str,
        arguments: Mapping[str, Any] | None,
        key: str | None,
        token_claims: Mapping[str, Any] | None = None,
    ) -> GrantUse:
        """The grant's decision if ``grant`` lets ``tool`` run with ``arguments`` under the
        idempotency ``key``; else :class:`GrantRefused`. ``token_claims`` are the access
        token's claims on an authenticated request (None: the request is not authenticated)."""
        if key is None:
            raise GrantRefused(
                "the call has no idempotency key (_meta 'io.keel/idempotency-key'), and a grant"
                " approves one call"
            )
        claims = self._claims(grant)
        if claims.get(CLAIM_TOOL) != tool:
            raise GrantRefused(f"the grant is for {claims.get(CLAIM_TOOL)!r}, not {tool}")
        server = _text(claims, CLAIM_SERVER)
        if claims.get(CLAIM_DIGEST) != approval_digest(server, tool, dict(arguments or {})):
            raise GrantRefused("the grant approves other arguments than these")
        run = _text(claims, CLAIM_RUN)
        if not key_in_run(key, run):
            raise GrantRefused(f"the grant is for run {run!r}, not for idempotency key {key!r}")
        if token_claims is not None and token_claims.get(CLAIM_RUN) != run:
            raise GrantRefused(f"the grant is for run {run!r}, not the access token's run")
        return GrantUse(
            run=run,
            decision=_text(claims, CLAIM_DECISION, required=True),
            approver=_text(claims, CLAIM_APPROVER),
            server=server,
            jti=_text(claims, "jti"),
            expires_at=float(claims["exp"]),
        )

    def _claims(self, grant: object) -> dict[str, Any]:
        if grant is None:
            raise GrantRefused(f"no grant in _meta {META_GRANT!r} (a human approves it in Keel)")
        if not isinstance(grant, str):
            raise GrantRefused(f"_meta {META_GRANT!r} must be a JWT string")
        if self.keys is None:
            raise GrantRefused("this server has no grant keys (--grant-jwks / KEEL_GRANT_JWKS)")
        try:
            return self.keys.verify(
                grant, typ=TYP_GRANT, issuers=self.issuers, audiences=self.audiences
            )
        except TokenRejected as exc:
            raise GrantRefused(f"grant rejected: {exc}") from None


def _text(claims: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = claims.get(name, "" if not required else None)
    if not isinstance(value, str) or (required and not value):
        raise GrantRefused(f"the grant's {name!r} claim is missing or not a string")
    return value


def key_in_run(key: str, run: str) -> bool:
    """Whether idempotency ``key`` (``<workflow_id>:<step>:<tool_call_id>``) is a call of the
    run ``run`` (the workflow id may itself contain colons, so it is matched as a prefix)."""
    if not run or not key.startswith(run + ":"):
        return False
    return _KEY_TAIL.fullmatch(key[len(run) + 1 :]) is not None


def access_token_claims(ctx: Context | None) -> dict[str, Any] | None:
    """The claims of the access token the request was authenticated with; None when it was
    not (stdio, ``--insecure-no-auth``). Read from the SDK's auth context, else from the HTTP
    request's ``scope["user"]`` (set by the SDK's authentication middleware)."""
    token = get_access_token()
    if token is None and ctx is not None:
        try:
            token = request_token(ctx.request_context.request)
        except ValueError:  # called outside a request
            token = None
    if token is None:
        return None
    return dict(token.claims or {})


def log_grant(event: str, tool: str, key: str | None, **fields: Any) -> None:
    """One structured log line: ``grant.accepted`` (info) or ``grant.refused`` (warning)."""
    level = logging.INFO if event == "grant.accepted" else logging.WARNING
    logger.log(level, event, extra={"keel": {"tool": tool, "idempotency_key": key, **fields}})


# ---------------------------------------------------------------------------- configuration


def add_grant_arguments(parser: argparse.ArgumentParser) -> None:
    """``--grant-jwks SRC`` (repeatable): the keys that sign approval grants."""
    parser.add_argument(
        "--grant-jwks",
        action="append",
        default=None,
        metavar="SRC",
        help="JWKS file or URL of the keys that sign approval grants (repeatable; default:"
        f" ${GRANT_JWKS_ENV}, else the --jwks sources unless --insecure-no-auth)",
    )


def grant_verifier_from(args: argparse.Namespace) -> GrantVerifier:
    """The verifier the parsed arguments and the environment configure; a JWKS source that
    cannot be read is a :class:`ServerConfigError` (one line, exit 2)."""
    sources = grant_sources(args)
    try:
        keys = KeySet(sources) if sources else None
    except KeySetError as exc:
        raise ServerConfigError(f"grant keys: {exc}") from None
    return GrantVerifier(keys, audiences=server_audiences(args), issuers=token_issuers(args))


def grant_sources(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> list[str]:
    """``--grant-jwks``, else ``KEEL_GRANT_JWKS``, else the access-token JWKS (``--jwks`` /
    ``KEEL_AUTH_JWKS``) — but not with ``--insecure-no-auth``: then grant keys must be
    given explicitly, and without them approval-requiring tools refuse every call."""
    env = os.environ if env is None else env
    explicit = getattr(args, "grant_jwks", None) or _split(env.get(GRANT_JWKS_ENV, ""))
    if explicit:
        return list(explicit)
    insecure = getattr(args, "insecure_no_auth", False) or env.get("KEEL_INSECURE_NO_AUTH") == "1"
    if insecure:
        return []
    return list(getattr(args, "jwks", None) or _split(env.get("KEEL_AUTH_JWKS", "")))


def server_audiences(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> list[str]:
    """The ``aud`` values this server accepts: those of its access tokens (resource.py)."""
    return accepted_audiences(args, os.environ if env is None else env)


def token_issuers(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> list[str]:
    """Accepted issuers: those of its access tokens (resource.py)."""
    return list(accepted_issuers(args, os.environ if env is None else env))


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]
