"""The worker's side of approval grants: minting, and refusing to mint (activities/grants.py).

A minted grant is checked with the servers' own verifier (mcp_servers/shared/auth/grants.py)
over the worker's JWKS, so both halves agree on every claim; the real servers accept it in
tests/integration/test_grants.py.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.worker import ExecuteActivityInput

from activities.grants import GRANT_TTL_SECONDS, GrantMinter
from keel.contracts import approval_digest, names
from keel.runtime.config import MCPServerTarget, Settings
from keel.runtime.keys import TokenSigner
from mcp_servers.shared.auth.grants import GrantVerifier
from mcp_servers.shared.auth.jwks import KeySet

URL = "http://127.0.0.1:8201/mcp"
RUN = "wf-1"
KEY = f"{RUN}:2:call_0"
ARGS = {"order_id": "ORD-1042", "amount": 20.0, "reason": "damaged"}


@pytest.fixture
def minter(keys: Any) -> GrantMinter:
    signer = TokenSigner.from_file(keys.signing_key)
    return GrantMinter(signer, {"support_desk": MCPServerTarget(name="support_desk", url=URL)})


def request(arguments: dict[str, Any], **meta: Any) -> ExecuteActivityInput:
    body = {"name": "refund_order", "arguments": arguments,
            "meta": {names.META_IDEMPOTENCY_KEY: KEY, **meta}}  # fmt: skip
    return ExecuteActivityInput(fn=print, args=[body], executor=None, headers={})


def approval(arguments: dict[str, Any], server: str = "support_desk") -> dict[str, Any]:
    digest = approval_digest(server, "refund_order", arguments)
    return {"id": "apr-0123", "digest": digest, "by": "alice"}


def sent_meta(call: ExecuteActivityInput) -> dict[str, Any]:
    meta: dict[str, Any] = call.args[0]["meta"]
    return meta


def test_an_approved_call_leaves_with_a_grant_the_server_accepts(
    minter: GrantMinter, keys: Any
) -> None:
    call = request(ARGS, **{names.META_APPROVAL: approval(ARGS)})
    minter.attach("support_desk", RUN, call)
    meta = sent_meta(call)
    assert names.META_APPROVAL not in meta  # the mark is for the worker only
    assert meta[names.META_IDEMPOTENCY_KEY] == KEY
    token = meta[names.META_GRANT]
    assert jwt.get_unverified_header(token)["typ"] == names.TYP_GRANT
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == URL and claims["iss"] == names.LOCAL_ISSUER
    assert claims["exp"] - claims["iat"] == GRANT_TTL_SECONDS and claims["jti"]
    assert {k: claims[k] for k in (names.CLAIM_RUN, names.CLAIM_SERVER, names.CLAIM_TOOL,
                                   names.CLAIM_APPROVER, names.CLAIM_DECISION)} == {
        names.CLAIM_RUN: RUN, names.CLAIM_SERVER: "support_desk",
        names.CLAIM_TOOL: "refund_order", names.CLAIM_APPROVER: "alice",
        names.CLAIM_DECISION: "apr-0123",
    }  # fmt: skip
    verifier = GrantVerifier(KeySet([str(keys.jwks)]), audiences=[URL])
    use = verifier.verify(token, tool="refund_order", arguments=ARGS, key=KEY)
    assert (use.run, use.decision, use.approver) == (RUN, "apr-0123", "alice")


def test_no_grant_for_arguments_other_than_the_approved_ones(minter: GrantMinter) -> None:
    edited = {**ARGS, "amount": 2000.0}
    call = request(edited, **{names.META_APPROVAL: approval(ARGS)})
    with pytest.raises(ApplicationError) as info:
        minter.attach("support_desk", RUN, call)
    assert (info.value.type, info.value.non_retryable) == ("GrantRefused", True)
    assert "\n" not in info.value.message
    assert info.value.message.startswith(
        "not minting an approval grant for refund_order on 'support_desk': the arguments sent"
    )
    assert names.META_GRANT not in sent_meta(call)


def test_the_digest_is_over_the_server_name_the_profile_uses(minter: GrantMinter) -> None:
    """The MCP server calls itself ``support-desk``; the approval names ``support_desk``."""
    call = request(ARGS, **{names.META_APPROVAL: approval(ARGS, server="support-desk")})
    with pytest.raises(ApplicationError, match="not the ones approved in 'apr-0123'"):
        minter.attach("support_desk", RUN, call)


@pytest.mark.parametrize(
    "mark", [{"digest": "sha256:x", "by": "a"}, {"id": "", "digest": "x"}, "apr-1", None]
)
def test_a_malformed_approval_mark_is_refused(minter: GrantMinter, mark: Any) -> None:
    call = request(ARGS, **{names.META_APPROVAL: mark if mark is not None else {"id": 5}})
    with pytest.raises(ApplicationError) as info:
        minter.attach("support_desk", RUN, call)
    assert info.value.type == "GrantRefused" and "must be" in info.value.message


def test_no_signing_key_sends_no_grant_and_no_mark() -> None:
    call = request(ARGS, **{names.META_APPROVAL: approval(ARGS)})
    GrantMinter.from_settings(Settings(signing_key=None)).attach("support_desk", RUN, call)
    assert sent_meta(call) == {names.META_IDEMPOTENCY_KEY: KEY}


def test_a_grant_in_the_request_is_never_passed_on(minter: GrantMinter) -> None:
    """Only the worker mints grants: one that came with the request (from workflow history)
    is dropped, with or without an approval mark."""
    call = request(ARGS, **{names.META_GRANT: "forged"})
    minter.attach("support_desk", RUN, call)
    assert sent_meta(call) == {names.META_IDEMPOTENCY_KEY: KEY}


def test_a_call_without_a_mark_is_untouched(minter: GrantMinter) -> None:
    call = request(ARGS)
    body = call.args[0]
    minter.attach("support_desk", RUN, call)
    assert call.args[0] is body


def test_a_stdio_server_is_named_in_the_audience(keys: Any) -> None:
    signer = TokenSigner.from_file(keys.signing_key)
    minter = GrantMinter(signer, {"desk": MCPServerTarget(name="desk", command=("python",))})
    call = request(ARGS, **{names.META_APPROVAL: approval(ARGS, server="desk")})
    minter.attach("desk", RUN, call)
    claims = jwt.decode(sent_meta(call)[names.META_GRANT], options={"verify_signature": False})
    assert claims["aud"] == "stdio:desk"
