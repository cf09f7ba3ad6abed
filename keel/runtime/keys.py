"""The embedded default's key material, and signing tokens with it.

``make up`` / ``make demo`` / the test stack call :func:`ensure_local_keys` for a directory
(``.keel/keys`` by default) and get three files, created once and kept:

* ``signing.pem`` (mode 0600): an EC P-256 private key. The worker signs its access tokens
  and approval grants with it, ``keel token`` signs tokens for people.
* ``jwks.json``: the public half as a JWK Set (RFC 7517), ``kid`` = the RFC 7638 thumbprint.
  The MCP servers verify tokens and grants against it; a real issuer's JWKS URL takes its
  place in production (docs/security.md).
* ``codec-keys.json`` (mode 0600): the AES-256 keys of the payload codec
  (:mod:`keel.runtime.codec`), ``{"encrypt_with": kid, "keys": {kid: base64}}``.

Rotation (:func:`rotate_signing_key`, :func:`rotate_codec_key`) adds a new key and keeps
the old ones: tokens already issued and payloads already written stay readable.

Signing uses PyJWT (with ``cryptography``); nothing here is hand-rolled crypto.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from keel.contracts.errors import ConfigError
from keel.contracts.names import LOCAL_ISSUER
from keel.runtime.config import CODEC_FILE, JWKS_FILE, SIGNING_FILE

SIGNING_ALGORITHM = "ES256"


@dataclass(frozen=True)
class LocalKeys:
    """The key files of one directory (see the module docstring)."""

    directory: Path

    @property
    def signing_key(self) -> Path:
        return self.directory / SIGNING_FILE

    @property
    def jwks(self) -> Path:
        return self.directory / JWKS_FILE

    @property
    def codec_keys(self) -> Path:
        return self.directory / CODEC_FILE


def ensure_local_keys(directory: Path) -> LocalKeys:
    """Create whichever of the three key files is missing under ``directory``; idempotent."""
    keys = LocalKeys(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not keys.signing_key.exists():
        _write_private(keys.signing_key, _new_signing_pem())
        _publish(keys)
    elif not keys.jwks.exists():
        _publish(keys)
    if not keys.codec_keys.exists():
        _write_private(keys.codec_keys, _codec_json())
    return keys


def rotate_signing_key(directory: Path) -> str:
    """A new signing key; the JWKS keeps the old public keys. Returns the new ``kid``."""
    keys = ensure_local_keys(directory)
    _write_private(keys.signing_key, _new_signing_pem())
    return _publish(keys)


def rotate_codec_key(directory: Path) -> str:
    """A new codec key that encrypts from now on; old keys still decrypt. Returns its id."""
    keys = ensure_local_keys(directory)
    data = json.loads(keys.codec_keys.read_text())
    kid = _new_codec_kid(data["keys"])
    data["keys"][kid] = base64.b64encode(secrets.token_bytes(32)).decode()
    data["encrypt_with"] = kid
    _write_private(keys.codec_keys, json.dumps(data, indent=2) + "\n")
    return kid


def thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an EC public key."""
    members = {name: public_jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


class TokenSigner:
    """Signs JWTs with one private key: ``kid`` header, ``iss``, ``iat``, ``exp``, ``jti``."""

    def __init__(self, private_pem: bytes, issuer: str = LOCAL_ISSUER) -> None:
        key = serialization.load_pem_private_key(private_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError("the signing key must be an EC P-256 private key (PEM)")
        self._key = key
        self.issuer = issuer
        self.kid = thumbprint(_public_jwk(key))

    @classmethod
    def from_file(cls, path: Path, issuer: str = LOCAL_ISSUER) -> TokenSigner:
        try:
            return cls(path.read_bytes(), issuer)
        except OSError as exc:
            raise ConfigError(f"cannot read the signing key {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise ConfigError(f"{path} is not a PEM private key: {exc}") from None

    def sign(
        self, claims: Mapping[str, Any], *, typ: str, ttl_seconds: float, now: float | None = None
    ) -> str:
        """A JWT of type ``typ`` carrying ``claims``, valid ``ttl_seconds`` from ``now``."""
        issued = int(now if now is not None else time.time())
        payload = {
            "iss": self.issuer,
            "iat": issued,
            "exp": issued + max(1, int(ttl_seconds)),
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(
            payload, self._key, algorithm=SIGNING_ALGORITHM, headers={"kid": self.kid, "typ": typ}
        )


def _new_signing_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return jwk


def _publish(keys: LocalKeys) -> str:
    """Add the current signing key's public JWK to ``jwks.json`` (first, as the newest)."""
    signer = TokenSigner(keys.signing_key.read_bytes())
    public = {**_public_jwk(signer._key), "kid": signer.kid, "use": "sig", "alg": "ES256"}
    existing: list[dict[str, Any]] = []
    if keys.jwks.exists():
        existing = [k for k in json.loads(keys.jwks.read_text())["keys"] if k["kid"] != signer.kid]
    keys.jwks.write_text(json.dumps({"keys": [public, *existing]}, indent=2) + "\n")
    return signer.kid


def _new_codec_kid(existing: Mapping[str, str]) -> str:
    while True:
        kid = f"k-{secrets.token_hex(4)}"
        if kid not in existing:
            return kid


def _codec_json() -> str:
    kid = _new_codec_kid({})
    keys = {kid: base64.b64encode(secrets.token_bytes(32)).decode()}
    return json.dumps({"encrypt_with": kid, "keys": keys}, indent=2) + "\n"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (created 0600, then replaced)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
