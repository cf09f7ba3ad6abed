"""The embedded default's key files and token signing (keel/runtime/keys.py)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import jwt
import pytest

from keel.contracts.errors import ConfigError
from keel.contracts.names import LOCAL_ISSUER, TYP_ACCESS_TOKEN
from keel.runtime.keys import (
    TokenSigner,
    ensure_local_keys,
    rotate_codec_key,
    rotate_signing_key,
    thumbprint,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_are_created_once_and_private_files_are_owner_only(tmp_path: Path) -> None:
    keys = ensure_local_keys(tmp_path / "keys")
    pem, jwks, codec = (keys.signing_key.read_bytes(), keys.jwks.read_text(),
                        keys.codec_keys.read_text())  # fmt: skip
    assert _mode(keys.signing_key) == 0o600
    assert _mode(keys.codec_keys) == 0o600
    again = ensure_local_keys(tmp_path / "keys")
    assert again.signing_key.read_bytes() == pem
    assert again.jwks.read_text() == jwks
    assert again.codec_keys.read_text() == codec


def test_jwks_holds_the_public_key_named_by_its_thumbprint(tmp_path: Path) -> None:
    keys = ensure_local_keys(tmp_path)
    (public,) = json.loads(keys.jwks.read_text())["keys"]
    assert "d" not in public  # the private scalar never reaches the public set
    assert public["kid"] == thumbprint(public)
    signer = TokenSigner.from_file(keys.signing_key)
    assert signer.kid == public["kid"]


def test_a_signed_token_verifies_with_the_published_key(tmp_path: Path) -> None:
    keys = ensure_local_keys(tmp_path)
    signer = TokenSigner.from_file(keys.signing_key)
    token = signer.sign({"aud": "http://a/mcp", "sub": "alice"}, typ=TYP_ACCESS_TOKEN,
                        ttl_seconds=60, now=1_000_000)  # fmt: skip
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": signer.kid, "typ": TYP_ACCESS_TOKEN}
    key = jwt.PyJWKSet.from_dict(json.loads(keys.jwks.read_text()))[signer.kid]
    claims = jwt.decode(token, key=key, algorithms=["ES256"], audience="http://a/mcp",
                        options={"verify_exp": False})  # fmt: skip
    assert claims["iss"] == LOCAL_ISSUER
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 60
    assert claims["jti"]


def test_rotating_the_signing_key_keeps_the_old_public_key(tmp_path: Path) -> None:
    keys = ensure_local_keys(tmp_path)
    old = TokenSigner.from_file(keys.signing_key).kid
    new = rotate_signing_key(tmp_path)
    assert new != old
    kids = [k["kid"] for k in json.loads(keys.jwks.read_text())["keys"]]
    assert kids == [new, old]  # newest first, the old one still verifies issued tokens
    assert TokenSigner.from_file(keys.signing_key).kid == new


def test_rotating_the_codec_key_encrypts_with_the_new_one_and_keeps_the_old(
    tmp_path: Path,
) -> None:
    keys = ensure_local_keys(tmp_path)
    (old,) = json.loads(keys.codec_keys.read_text())["keys"]
    new = rotate_codec_key(tmp_path)
    data = json.loads(keys.codec_keys.read_text())
    assert data["encrypt_with"] == new
    assert set(data["keys"]) == {old, new}
    assert all(len(base64.b64decode(v)) == 32 for v in data["keys"].values())
    assert _mode(keys.codec_keys) == 0o600


def test_an_unreadable_or_wrong_signing_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the signing key"):
        TokenSigner.from_file(tmp_path / "missing.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="is not a PEM private key"):
        TokenSigner.from_file(bad)
