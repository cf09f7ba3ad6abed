"""Verifying JWTs against JWK Sets from files or URLs (PyJWT does the cryptography).

One :class:`KeySet` per trust source: the access-token issuers (``--jwks``), the worker that
signs approval grants (``--grant-jwks``). A source is a file path or an ``http(s)://`` URL;
several may be given (two issuers, or an old and a new key during rotation). A token whose
``kid`` is unknown makes the set reload its sources once (at most every
``RELOAD_INTERVAL_SECONDS``), so a rotated key is picked up without a restart.

:func:`KeySet.verify` checks, in this order: the header's ``typ`` (a grant is never accepted
as an access token, nor the reverse), the signature with the key named by ``kid``, ``exp``
and ``iat`` (with ``LEEWAY_SECONDS``), ``iss`` (one of the accepted issuers) and ``aud`` (one
of the accepted audiences). Any failure is a :class:`TokenRejected` with a one-line reason
fit for a log line and a ``WWW-Authenticate`` description (never the token itself).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

ALGORITHMS = ("ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "EdDSA")
LEEWAY_SECONDS = 30
RELOAD_INTERVAL_SECONDS = 30.0
FETCH_TIMEOUT_SECONDS = 5.0


class TokenRejected(Exception):
    """A token that does not verify; the text says why in one line."""


class KeySetError(Exception):
    """A JWKS source that cannot be read or parsed (configuration, not a bad token)."""


def load_source(source: str) -> list[PyJWK]:
    """The signing keys of one JWKS file or URL."""
    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(source, timeout=FETCH_TIMEOUT_SECONDS) as response:
                raw = response.read()
        else:
            raw = Path(source).read_bytes()
    except OSError as exc:
        raise KeySetError(f"cannot read JWKS {source}: {exc}") from None
    try:
        data = json.loads(raw)
        return list(PyJWKSet.from_dict(data).keys)
    except (ValueError, TypeError, KeyError, jwt.PyJWTError) as exc:
        raise KeySetError(f"{source} is not a JWK Set: {exc}") from None


class KeySet:
    """The keys of ``sources``, and verification of tokens signed with them."""

    def __init__(self, sources: Sequence[str]) -> None:
        if not sources:
            raise KeySetError("no JWKS source given")
        self.sources = tuple(sources)
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] = {}
        self._loaded_at = 0.0
        self._reload()

    def _reload(self) -> None:
        keys: dict[str, PyJWK] = {}
        for source in self.sources:
            for key in load_source(source):
                if key.key_id:
                    keys.setdefault(key.key_id, key)
        with self._lock:
            self._keys = keys
            self._loaded_at = time.monotonic()

    def key(self, kid: str) -> PyJWK | None:
        """The key ``kid``, reloading the sources once if it is unknown (rotation)."""
        found = self._keys.get(kid)
        if found is None and time.monotonic() - self._loaded_at >= RELOAD_INTERVAL_SECONDS:
            try:
                self._reload()
            except KeySetError:
                return None
            found = self._keys.get(kid)
        return found

    def verify(
        self,
        token: str,
        *,
        typ: str | None,
        issuers: Iterable[str],
        audiences: Iterable[str],
        refuse_typ: Iterable[str] = (),
    ) -> dict[str, Any]:
        """The claims of ``token`` if it verifies (see the module docstring), else
        :class:`TokenRejected`. ``typ=None`` accepts any type but those in ``refuse_typ``
        (issuers that set no ``typ`` on access tokens)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("not a JWT") from None
        kind = str(header.get("typ") or "")
        if (typ is not None and kind.lower() != typ.lower()) or kind.lower() in {
            t.lower() for t in refuse_typ
        }:
            raise TokenRejected(f"wrong token type {kind or 'none'!r}")
        kid = header.get("kid")
        key = self.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenRejected(f"unknown signing key {kid!r}")
        accepted = [i.rstrip("/") for i in issuers]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=list(ALGORITHMS),
                audience=list(audiences),
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"], "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("token expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("token is for another audience") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"invalid token: {exc}") from None
        if str(claims.get("iss", "")).rstrip("/") not in accepted:
            raise TokenRejected(f"untrusted issuer {claims.get('iss')!r}")
        return claims
