"""Approvers' identity tokens, verified as the workflow verifies them (pure functions, real
keys and tokens: keel.runtime.keys signs, PyJWT verifies)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from activities.approvers import public_keys
from keel.contracts import ApproverKeys, Decision, DecisionRecord, names
from keel.runtime.keys import TokenSigner, ensure_local_keys
from tests.unit.workflows.approvals.test_desk import request
from workflows.approvals.desk import ApprovalDesk
from workflows.approvals.identity import IdentityError, UnknownKey, authenticate, verify

# Workflow time, years before the test runs: verification must use it, never the clock.
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
RUN = "run-1"


@pytest.fixture
def issuer(tmp_path: Path) -> tuple[TokenSigner, ApproverKeys]:
    keys = ensure_local_keys(tmp_path / "keys")
    return TokenSigner(keys.signing_key.read_bytes()), approver_keys(keys.jwks)


def approver_keys(jwks: Path, **overrides: Any) -> ApproverKeys:
    fields: dict[str, Any] = {
        "keys": public_keys(str(jwks), jwks.read_bytes()),
        "issuers": [names.LOCAL_ISSUER],
        "audience": names.APPROVER_AUDIENCE,
        "roles_claim": "roles",
    }
    fields.update(overrides)
    return ApproverKeys(**fields)


def token(signer: TokenSigner, *, typ: str = "JWT", at: datetime = NOW, ttl: float = 300,
          **claims: Any) -> str:  # fmt: skip
    body: dict[str, Any] = {"aud": names.APPROVER_AUDIENCE, "sub": "u-17",
                            "preferred_username": "alice", "roles": ["supervisor"]}  # fmt: skip
    body.update(claims)
    return signer.sign(body, typ=typ, ttl_seconds=ttl, now=at.timestamp())


def decision(identity_token: str | None, **fields: Any) -> Decision:
    return Decision(approval_id="apr-1", digest="sha256:x", decision="approve",
                    identity_token=identity_token, **fields)  # fmt: skip


def refusal(keys: ApproverKeys, identity_token: str | None, **fields: Any) -> IdentityError:
    with pytest.raises(IdentityError) as info:
        authenticate(decision(identity_token, **fields), keys, NOW, RUN)
    assert "\n" not in str(info.value)
    if identity_token:
        assert identity_token not in str(info.value)  # a bearer credential: never echoed
    return info.value


def test_a_valid_token_decides_with_its_own_name_and_roles(
    issuer: tuple[TokenSigner, ApproverKeys],
) -> None:
    signer, keys = issuer
    accepted, identity = authenticate(decision(token(signer, roles=["supervisor", "agent"])),
                                      keys, NOW, RUN)  # fmt: skip
    assert (accepted.by, accepted.roles) == ("alice", ["supervisor", "agent"])
    assert accepted.identity_token is None  # dropped once verified
    assert (identity.name, identity.subject, identity.issuer) == ("alice", "u-17",
                                                                  names.LOCAL_ISSUER)  # fmt: skip
    assert identity.token_id and len(identity.token_id) == 32
    # Claims that agree with the token (a name, a subset of its roles) are accepted as well.
    again, _ = authenticate(decision(token(signer), by="alice", roles=["supervisor"]), keys, NOW,
                            RUN)  # fmt: skip
    assert (again.by, again.roles) == ("alice", ["supervisor"])


def test_forged_roles_and_names_are_refused_not_corrected(
    issuer: tuple[TokenSigner, ApproverKeys],
) -> None:
    signer, keys = issuer
    plain = token(signer, preferred_username="mallory", roles=["agent"])
    forged = refusal(keys, plain, roles=["supervisor"])
    assert "claims role(s) supervisor" in str(forged) and "token roles: agent" in str(forged)
    assert forged.identity is not None and forged.identity.name == "mallory"
    named = refusal(keys, token(signer), by="bob")
    assert "claims to be by 'bob'" in str(named) and "names 'alice'" in str(named)


def test_no_token_is_refused(issuer: tuple[TokenSigner, ApproverKeys]) -> None:
    _, keys = issuer
    assert "requires a signed decision" in str(refusal(keys, None, roles=["supervisor"]))
    assert "not a JWT" in str(refusal(keys, "not-a-token"))


def test_expiry_is_judged_by_workflow_time(issuer: tuple[TokenSigner, ApproverKeys]) -> None:
    signer, keys = issuer
    # Issued at NOW for 5 minutes: valid at NOW although the machine's clock is years later.
    assert verify(token(signer), keys, NOW)[0].name == "alice"
    late = NOW + timedelta(minutes=10)
    with pytest.raises(IdentityError, match="identity token expired at 2024-03-01 12:05:00"):
        verify(token(signer), keys, late)
    with pytest.raises(IdentityError, match="not valid before"):
        verify(token(signer, nbf=int((NOW + timedelta(hours=1)).timestamp())), keys, NOW)
    with pytest.raises(IdentityError, match="issued in the future"):
        verify(token(signer, at=NOW + timedelta(hours=1)), keys, NOW)


def test_wrong_audience_issuer_type_or_run_are_refused(
    issuer: tuple[TokenSigner, ApproverKeys], tmp_path: Path
) -> None:
    signer, keys = issuer
    assert "another audience" in str(refusal(keys, token(signer, aud="http://desk/mcp")))
    assert "another audience" in str(refusal(keys, token(signer, aud=["a", "b"])))
    other_issuer = TokenSigner(ensure_local_keys(tmp_path / "keys").signing_key.read_bytes(),
                               issuer="https://evil.example")  # fmt: skip
    assert "untrusted issuer 'https://evil.example'" in str(refusal(keys, token(other_issuer)))
    worker_token = token(signer, typ=names.TYP_ACCESS_TOKEN)
    assert "'at+jwt' token is not an approver's identity" in str(refusal(keys, worker_token))
    assert "for run 'run-2'" in str(refusal(keys, token(signer, keel_run="run-2")))
    assert authenticate(decision(token(signer, keel_run=RUN)), keys, NOW, RUN)[0].by == "alice"


def test_a_signature_by_an_unknown_key_is_refused(
    issuer: tuple[TokenSigner, ApproverKeys], tmp_path: Path
) -> None:
    _, keys = issuer
    stranger = TokenSigner(ensure_local_keys(tmp_path / "other").signing_key.read_bytes())
    unknown = refusal(keys, token(stranger))
    assert isinstance(unknown, UnknownKey) and unknown.kid == stranger.kid
    # The stranger's signature under the trusted key's id: the signature does not verify.
    stranger.kid = keys.keys[0]["kid"]
    assert "signature does not verify" in str(refusal(keys, token(stranger)))


def test_names_and_roles_from_configured_claims(
    issuer: tuple[TokenSigner, ApproverKeys], tmp_path: Path
) -> None:
    signer, _ = issuer
    keys = approver_keys(tmp_path / "keys" / "jwks.json", roles_claim="realm_access.roles")
    keycloak = token(signer, preferred_username=None, roles=None,
                     realm_access={"roles": ["supervisor", "offline_access"]})  # fmt: skip
    identity, _ = verify(keycloak, keys, NOW)
    assert (identity.name, identity.roles) == ("u-17", ["supervisor", "offline_access"])
    spaced = approver_keys(tmp_path / "keys" / "jwks.json", roles_claim="scp")
    assert verify(token(signer, scp="supervisor agent"), spaced, NOW)[0].roles == [
        "supervisor",
        "agent",
    ]
    auth0 = approver_keys(tmp_path / "keys" / "jwks.json", roles_claim="https://keel.example/roles")
    claims: dict[str, Any] = {"https://keel.example/roles": ["supervisor"]}
    namespaced = token(signer, **claims)
    assert verify(namespaced, auth0, NOW)[0].roles == ["supervisor"]
    with pytest.raises(IdentityError, match="names nobody"):
        verify(token(signer, preferred_username=None, sub=None), keys, NOW)


def test_only_public_keys_are_kept() -> None:
    private = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    jwks = json.dumps({"keys": [{**private, "kid": "k1"}, {"kty": "EC", "use": "enc"}]})
    [kept] = public_keys("issuer.json", jwks.encode())
    assert set(kept) == {"kty", "kid", "crv", "x", "y"}  # no "d"
    secret = json.dumps({"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]})
    with pytest.raises(Exception, match="never a shared secret"):
        public_keys("issuer.json", secret.encode())
    with pytest.raises(Exception, match="is not a JWK Set"):
        public_keys("issuer.json", b"<html>")
    with pytest.raises(Exception, match="holds no signing key"):
        public_keys("issuer.json", b'{"keys": []}')


def test_the_audit_keeps_the_verified_identity(issuer: tuple[TokenSigner, ApproverKeys]) -> None:
    signer, keys = issuer
    accepted, identity = authenticate(decision(token(signer)), keys, NOW, RUN)
    desk = ApprovalDesk(bound=True)
    desk.accept(accepted, identity)
    record = DecisionRecord(approval_id="apr-1", tool="refund_order", decision="approve",
                            by="alice", at=NOW, outcome="executed")  # fmt: skip
    desk.close(request(approval_id="apr-1"), record)
    [audited] = desk.audit
    assert audited.identity == identity
    assert "identity_token" not in audited.model_dump_json()


def test_reasons_stay_one_line_whatever_the_claims(
    issuer: tuple[TokenSigner, ApproverKeys],
) -> None:
    signer, keys = issuer
    refusal(keys, token(signer), roles=["super\nvisor"])  # refusal() asserts one line
    refusal(keys, token(signer), by="bob\nok")
