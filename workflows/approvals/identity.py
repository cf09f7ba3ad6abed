"""Authenticated approvers: verifying a decision's identity token in workflow code.

A profile with ``approvals.require_identity`` accepts a decision only with an identity token
from the organisation's issuer (docs/security.md). The run loads the issuers' public keys
once at its start (the ``keel.approvers.keys`` activity, :func:`load_keys`: the keys are in
history) and verifies each token here, in the update validator, the update handler and the
signal handler alike — deterministically: PyJWT checks the signature only (``PyJWS``, which
never reads a clock) and the claims are checked here against ``workflow.now()`` passed in.

The decider's name (``preferred_username``, else ``sub``) and roles (the roles claim) come
from the token. A decision that claims another name, or a role the token does not grant, is
refused: the decider claimed something false, so it is not silently corrected. The token is
a bearer credential: it is dropped from the accepted decision and never recorded; the audit
keeps the verified name, roles, issuer and the token's ``jti``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import cryptography.exceptions  # noqa: F401  (PyJWT's backend, outside the sandbox)
    import jwt

    from activities.approvers import ApproverKeyActivities
    from keel.contracts import ApproverIdentity, ApproverKeys, Decision, names
    from workflows.approvals.desk import DecisionError

# Asymmetric algorithms only: a symmetric key would be a shared secret in history.
ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
              "EdDSA")  # fmt: skip
LEEWAY = timedelta(seconds=30)
# Token types that are never an approver's identity (worker-minted credentials).
REFUSED_TYP = {names.TYP_ACCESS_TOKEN, names.TYP_GRANT}
KEYS_TIMEOUT = timedelta(seconds=30)
HOW_TO_SIGN = (
    "pass the decider's identity token (keel approve --identity-token, KEEL_IDENTITY_TOKEN,"
    " or the decision's identity_token field)"
)


class IdentityError(DecisionError):
    """An identity token that does not make the decision acceptable (the text says why);
    ``identity`` is who the token names when it verified (a false claim of name or role)."""

    def __init__(self, message: str, identity: ApproverIdentity | None = None) -> None:
        super().__init__(message)
        self.identity = identity


class UnknownKey(IdentityError):
    """A token signed with a key the run does not know (yet): maybe a rotated key."""

    def __init__(self, kid: str) -> None:
        super().__init__(f"identity token signed with an unknown key {kid!r}")
        self.kid = kid


def authenticate(
    decision: Decision, keys: ApproverKeys | None, now: datetime, run_id: str
) -> tuple[Decision, ApproverIdentity]:
    """``decision`` as accepted — by and roles from its verified token, the token dropped —
    and the identity; ``IdentityError`` when it cannot be accepted. A token that names a run
    (the ``keel_run`` claim) decides in that run only."""
    if not decision.identity_token:
        raise IdentityError(f"this run requires a signed decision: {HOW_TO_SIGN}")
    if keys is None:
        raise IdentityError("this run has no approver keys to verify identity tokens with")
    identity, run = verify(decision.identity_token, keys, now)
    if run is not None and run != run_id:
        raise IdentityError(f"the identity token is for run {run!r}", identity)
    if decision.by and decision.by != identity.name:
        raise IdentityError(
            f"the decision claims to be by {decision.by!r} but its identity token names"
            f" {identity.name!r}",
            identity,
        )
    forged = [role for role in decision.roles if role not in identity.roles]
    if forged:
        raise IdentityError(
            f"the decision claims role(s) {_listed(forged)} that {_listed([identity.name])}'s"
            f" identity token does not grant (token roles: {_listed(identity.roles) or 'none'})",
            identity,
        )
    accepted = decision.model_copy(
        update={"by": identity.name, "roles": list(identity.roles), "identity_token": None}
    )
    return accepted, identity


def _listed(values: list[str]) -> str:
    """``values`` for a one-line reason (whitespace inside a value collapsed)."""
    return ", ".join(" ".join(value.split()) for value in values)


def verify(token: str, keys: ApproverKeys, now: datetime) -> tuple[ApproverIdentity, str | None]:
    """The identity ``token`` names (and the run its ``keel_run`` claim names, if any), if its
    type, signature, issuer, audience and times (against ``now``) verify; else
    ``IdentityError`` (``UnknownKey`` for an unknown kid)."""
    claims = _signed_claims(token, keys)
    issuer = str(claims.get("iss", "")).rstrip("/")
    if issuer not in {i.rstrip("/") for i in keys.issuers}:
        raise IdentityError(f"identity token from an untrusted issuer {claims.get('iss')!r}")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if keys.audience not in audiences:
        raise IdentityError(
            f"identity token is for another audience ({audience!r}, not {keys.audience!r})"
        )
    _check_times(claims, now)
    name = claims.get("preferred_username") or claims.get("sub")
    if not isinstance(name, str) or not name.strip():
        raise IdentityError("identity token names nobody (no preferred_username or sub)")
    jti, run = claims.get("jti"), claims.get(names.CLAIM_RUN)
    identity = ApproverIdentity(
        name=name, subject=str(claims.get("sub") or ""), roles=_roles(claims, keys.roles_claim),
        issuer=issuer, token_id=jti if isinstance(jti, str) else None,
    )  # fmt: skip
    return identity, None if run is None else str(run)


def _signed_claims(token: str, keys: ApproverKeys) -> dict[str, Any]:
    """The claims of ``token`` once its signature verifies with the key its ``kid`` names."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise IdentityError("the identity token is not a JWT") from None
    kind = str(header.get("typ") or "")
    if kind.lower() in {t.lower() for t in REFUSED_TYP}:
        raise IdentityError(f"a {kind!r} token is not an approver's identity token")
    kid = str(header["kid"]) if isinstance(header.get("kid"), str) else ""
    jwk = next((k for k in keys.keys if str(k.get("kid") or "") == kid), None)
    if jwk is None:
        raise UnknownKey(kid)
    alg = header.get("alg")  # for a key that does not name its own (RSA: RS256 or PS256)
    algorithm = alg if "alg" not in jwk and alg in ALGORITHMS else None
    try:
        # PyJWT and cryptography import parts of themselves lazily (the OpenSSL backend):
        # inside a workflow those imports must pass the sandbox through too.
        with workflow.unsafe.imports_passed_through():
            key = jwt.PyJWK(jwk, algorithm=algorithm)
            signed = jwt.PyJWS().decode_complete(token, key=key, algorithms=list(ALGORITHMS))
        claims = json.loads(signed["payload"])
    except jwt.InvalidSignatureError:
        raise IdentityError("the identity token's signature does not verify") from None
    except (jwt.PyJWTError, ValueError) as exc:
        raise IdentityError(f"invalid identity token: {exc}") from None
    if not isinstance(claims, dict):
        raise IdentityError("invalid identity token: its payload is not a JSON object")
    return claims


def _check_times(claims: dict[str, Any], now: datetime) -> None:
    """``exp`` (required), ``nbf`` and ``iat`` against ``now`` (workflow time), with leeway."""
    exp = _time(claims, "exp")
    if exp is None:
        raise IdentityError("identity token has no expiry (exp)")
    if exp <= now - LEEWAY:
        raise IdentityError(f"identity token expired at {exp:%Y-%m-%d %H:%M:%S} UTC")
    nbf = _time(claims, "nbf")
    if nbf is not None and nbf > now + LEEWAY:
        raise IdentityError(f"identity token is not valid before {nbf:%Y-%m-%d %H:%M:%S} UTC")
    iat = _time(claims, "iat")
    if iat is not None and iat > now + LEEWAY:
        raise IdentityError("identity token was issued in the future (iat)")


def _time(claims: dict[str, Any], name: str) -> datetime | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IdentityError(f"invalid identity token: {name} is not a number")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise IdentityError(f"invalid identity token: {name} is out of range") from None


def _roles(claims: dict[str, Any], path: str) -> list[str]:
    """The roles in claim ``path`` (a claim of that exact name — Auth0's namespaced
    ``https://example.com/roles`` —, else the dotted path: ``realm_access.roles``): a list of
    strings or one space-separated string; none when absent."""
    value: Any = claims.get(path)
    if value is None:
        value = claims
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [role for role in value if isinstance(role, str)]
    return []


async def load_keys() -> ApproverKeys:
    """The ``keel.approvers.keys`` activity. A failure fails the run at its start
    (``ConfigError``: config_error; ``UpstreamUnavailable``) in one line."""
    try:
        return await workflow.execute_activity_method(
            ApproverKeyActivities.load,
            start_to_close_timeout=KEYS_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1)),
            summary="load approver keys",
        )
    except ActivityError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
        error_type = cause.type if isinstance(cause, ApplicationError) else None
        raise ApplicationError(
            f"approvals.require_identity: {message}",
            type=error_type or names.ERROR_UPSTREAM_UNAVAILABLE,
            non_retryable=True,
        ) from None
