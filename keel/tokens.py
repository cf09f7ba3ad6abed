"""``keel token``: a token for a person, signed with the local key (docs/security.md).

Access tokens for an MCP server (MCP Inspector, Claude Desktop, curl)::

    keel token --server support_desk                 # aud = the worker's URL of the server,
                                                     # scopes = all it advertises
    keel token --audience http://127.0.0.1:8201/mcp --scope desk:read
    keel token --server support_desk --scope desk:read --sub alice --ttl 600

An approver's identity token (``approvals.require_identity``)::

    keel token --approver --sub alice --role supervisor

Only the token is printed on stdout. The key is ``Settings.signing_key`` (``KEEL_SIGNING_KEY``,
else ``<KEEL_HOME>/keys/signing.pem`` made by ``make up``); the issuer ``KEEL_AUTH_ISSUER``.
Mistakes are one line on stderr and exit 2, like every ``keel`` command.
"""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any

import httpx2
from mcp.server.auth.routes import build_resource_metadata_url
from pydantic import AnyHttpUrl

from keel.contracts.errors import InputError
from keel.contracts.names import APPROVER_AUDIENCE, CLAIM_ROLES, TYP_ACCESS_TOKEN
from keel.runtime.config import Settings
from keel.runtime.keys import TokenSigner

DEFAULT_TTL_SECONDS = 3600
MAX_TTL_SECONDS = 86400
CLI_CLIENT_ID = "keel-cli"
# An approver's identity token is neither an access token nor a grant (docs/security.md).
TYP_IDENTITY = "JWT"


def add_token_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "token", help="print a token signed with the local key (MCP Inspector, approvers)"
    )
    target = cmd.add_mutually_exclusive_group()
    target.add_argument(
        "--server", help="an MCP server the worker knows: aud = its URL; scopes = all it lists"
    )
    target.add_argument(
        "--approver",
        action="store_true",
        help="an approver's identity token (aud keel-approvals) instead of an access token",
    )
    cmd.add_argument("--audience", metavar="URL", help="the token's aud (default: --server's URL)")
    cmd.add_argument(
        "--scope",
        dest="scopes",
        metavar="S",
        action="append",
        default=[],
        help="a scope (repeatable; default: every scope the --server advertises)",
    )
    cmd.add_argument("--sub", default=None, help="who the token names (default: your OS user)")
    cmd.add_argument(
        "--role",
        dest="roles",
        metavar="R",
        action="append",
        default=[],
        help="a role of the token's subject (repeatable)",
    )
    cmd.add_argument(
        "--ttl",
        type=int,
        default=DEFAULT_TTL_SECONDS,
        metavar="SECONDS",
        help=f"lifetime (default {DEFAULT_TTL_SECONDS}, at most {MAX_TTL_SECONDS})",
    )


async def run_token(args: argparse.Namespace, settings: Settings) -> int:
    """Mint the token ``args`` ask for and print it (stdout only)."""
    if not 1 <= args.ttl <= MAX_TTL_SECONDS:
        raise InputError(f"--ttl must be 1..{MAX_TTL_SECONDS} seconds, got {args.ttl}")
    if settings.signing_key is None:
        raise InputError("no signing key: run `make up` first or set KEEL_SIGNING_KEY")
    signer = TokenSigner.from_file(settings.signing_key, settings.auth_issuer)
    subject = args.sub or _os_user()
    scopes = [part for scope in args.scopes for part in scope.split()]
    if args.approver:
        audience = args.audience or os.environ.get("KEEL_APPROVER_AUDIENCE") or APPROVER_AUDIENCE
        claims: dict[str, Any] = {
            "aud": audience,
            "sub": subject,
            "preferred_username": subject,
            CLAIM_ROLES: list(args.roles),
        }
        print(signer.sign(claims, typ=TYP_IDENTITY, ttl_seconds=args.ttl))
        return 0
    url = _server_url(args.server, settings) if args.server else None
    audience = args.audience or url
    if audience is None:
        raise InputError("keel token needs --server NAME or --audience URL (or --approver)")
    if not scopes and url is not None:
        scopes = await advertised_scopes(args.server, url)
    claims = {"aud": audience, "sub": subject, "client_id": CLI_CLIENT_ID}
    if scopes:
        claims["scope"] = " ".join(dict.fromkeys(scopes))
    if args.roles:
        claims[CLAIM_ROLES] = list(args.roles)
    print(signer.sign(claims, typ=TYP_ACCESS_TOKEN, ttl_seconds=args.ttl))
    return 0


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "cli-user"


def _server_url(name: str, settings: Settings) -> str:
    target = settings.mcp_servers.get(name)
    if target is None:
        known = ", ".join(sorted(settings.mcp_servers)) or "none"
        raise InputError(f"unknown MCP server {name!r} (known: {known}; KEEL_MCP_<NAME>=<url>)")
    if target.url is None:
        raise InputError(f"MCP server {name!r} runs over stdio: it takes no tokens")
    return target.url


async def advertised_scopes(name: str, url: str) -> list[str]:
    """``scopes_supported`` of the server's protected resource metadata (RFC 9728)."""
    metadata = str(build_resource_metadata_url(AnyHttpUrl(url)))
    problem = "it lists none"
    try:
        async with httpx2.AsyncClient(timeout=10.0) as http:
            response = await http.get(metadata)
        listed = response.json().get("scopes_supported") if response.is_success else None
        if not response.is_success:
            problem = f"HTTP {response.status_code}"
    except (httpx2.HTTPError, ValueError, AttributeError) as exc:
        listed, problem = None, f"{type(exc).__name__}: {exc}"
    if not isinstance(listed, list) or not listed:
        raise InputError(
            f"cannot read the scopes of MCP server {name!r} from {metadata} ({problem});"
            " is it running? name them with --scope"
        )
    return [str(scope) for scope in listed]
