"""Encrypted payloads: the AES-256-GCM payload codec and Keel's data converter.

Every payload a Keel client or worker writes to Temporal (workflow and activity arguments and
results, update/signal/query arguments and results, memos, activity and timer summaries,
failure messages and stack traces) passes through :class:`EncryptionCodec` on its way out:

* the whole original ``temporalio.api.common.v1.Payload`` (its metadata, such as
  ``encoding: json/plain``, included) is serialized and encrypted with AES-256-GCM
  (``cryptography``'s ``AESGCM``) under a fresh random 96-bit nonce;
* the payload that Temporal stores carries only ``encoding: binary/encrypted``,
  ``encryption-key-id: <kid>`` and ``data = nonce || ciphertext || tag``; the key id is the
  associated data, so a payload cannot be passed off as another key's;
* a payload of 1 KiB or more is zlib-compressed before it is encrypted when that saves a tenth
  (``encryption-compression: zlib``, also in the associated data): text and JSON, most of
  what a run writes, shrink several times, and Temporal's history limits count the stored
  bytes. The trade-off is in docs/security.md ("Compression before encryption").

The keys come from a keyring file (``Settings.codec_keys``, ``KEEL_CODEC_KEYS``; ``make up``
creates ``.keel/keys/codec-keys.json``): ``{"encrypt_with": kid, "keys": {kid: base64}}``.
New payloads are encrypted with ``encrypt_with``; any key of the ring decrypts, so after
``keel.runtime.keys.rotate_codec_key`` old histories stay readable. The file is read again
when it changes, so a rotation reaches running workers and the codec server without a restart.

Decoding passes payloads that are not ``binary/encrypted`` through unchanged: histories written
before the codec was on (tests/replay) and input sent by ``temporal workflow start --input``
without ``--codec-endpoint`` still read. A payload under an unknown key id, or one that fails
authentication (altered, truncated), is a :class:`CodecError`: one line, no traceback.

What the codec cannot cover (workflow ids, search attributes, activity and workflow type
names, timestamps) is listed in docs/security.md, "What is and is not encrypted".
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    ExternalStorage,
    PayloadCodec,
)

from keel.contracts.errors import ConfigError, KeelError
from keel.runtime.logs import get_logger

ENCODING = b"binary/encrypted"
"""The ``encoding`` metadata of an encrypted payload."""
META_ENCODING = "encoding"
META_KEY_ID = "encryption-key-id"
NONCE_BYTES = 12  # 96 bits, the size GCM is specified for
TAG_BYTES = 16
KEY_BYTES = 32  # AES-256
META_COMPRESSION = "encryption-compression"
ZLIB = b"zlib"
MIN_COMPRESS_BYTES = 1024  # smaller payloads are left as they are
MIN_SAVING = 0.1  # compressed only when that saves a tenth or more

log = get_logger("keel.codec")


class CodecError(KeelError, ValueError):
    """A payload that cannot be decrypted (unknown key id, altered, or no keyring)."""


@dataclass(frozen=True)
class Keyring:
    """The codec's keys: ``encrypt_with`` encrypts, every key of ``keys`` decrypts."""

    encrypt_with: str
    keys: Mapping[str, bytes]
    source: str = "the codec keyring"

    @classmethod
    def parse(cls, text: str, source: str) -> Keyring:
        """The keyring in ``text`` (the JSON of ``codec-keys.json``); ConfigError naming
        ``source`` and what is wrong, in one line."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: not JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
            raise ConfigError(f'{source}: expected {{"encrypt_with": ID, "keys": {{ID: base64}}}}')
        keys = {str(kid): _key(source, str(kid), value) for kid, value in data["keys"].items()}
        current = data.get("encrypt_with")
        if not isinstance(current, str) or current not in keys:
            known = ", ".join(sorted(keys)) or "none"
            raise ConfigError(
                f"{source}: encrypt_with {current!r} is not one of its keys ({known})"
            )
        return cls(encrypt_with=current, keys=keys, source=source)

    @classmethod
    def load(cls, path: Path) -> Keyring:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the codec keyring {path}: {exc.strerror}") from None
        return cls.parse(text, f"codec keyring {path}")


def _key(source: str, kid: str, value: object) -> bytes:
    try:
        key = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{source}: key {kid!r} is not {KEY_BYTES} bytes of base64 (AES-256)")
    return key


class KeyringFile:
    """A keyring file, read again whenever it changes (a rotation needs no restart).

    A file that stops parsing after it was read once keeps the keys read before (a warning is
    logged once per change); one that never parsed is a ConfigError at construction.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._stat()
        self._ring = Keyring.load(path)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> Keyring:
        stamp = self._stat()
        if stamp is not None and stamp != self._stamp:
            self._stamp = stamp
            try:
                self._ring = Keyring.load(self.path)
            except ConfigError as exc:
                log.warning(
                    "codec keyring unreadable; keeping the keys read before", error=str(exc)
                )
        return self._ring


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole payloads (see the module docstring).

    Without a keyring (``keys=None``) it encrypts nothing and refuses to decode an encrypted
    payload with a :class:`CodecError` that says which setting is missing.
    """

    def __init__(self, keys: KeyringFile | Keyring | None) -> None:
        self._keys = keys

    def keyring(self) -> Keyring | None:
        keys = self._keys
        return keys.current() if isinstance(keys, KeyringFile) else keys

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        ring = self.keyring()
        if ring is None:
            return list(payloads)
        kid = ring.encrypt_with
        aead = AESGCM(ring.keys[kid])
        return [p if _is_encrypted(p) else _encrypt(aead, kid, p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if not any(_is_encrypted(p) for p in payloads):
            return list(payloads)
        ring = self.keyring()
        return [_decrypt(ring, p) if _is_encrypted(p) else p for p in payloads]


def _is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get(META_ENCODING) == ENCODING


def _encrypt(aead: AESGCM, kid: str, payload: Payload) -> Payload:
    nonce = os.urandom(NONCE_BYTES)
    plain = payload.SerializeToString(deterministic=True)
    metadata = {META_ENCODING: ENCODING, META_KEY_ID: kid.encode()}
    squeezed = zlib.compress(plain, 6) if len(plain) >= MIN_COMPRESS_BYTES else plain
    if len(squeezed) <= len(plain) * (1 - MIN_SAVING):
        plain = squeezed
        metadata[META_COMPRESSION] = ZLIB
    sealed = aead.encrypt(nonce, plain, _associated(kid, metadata))
    return Payload(metadata=metadata, data=nonce + sealed)


def _associated(kid: str, metadata: Mapping[str, bytes]) -> bytes:
    """The key id, and the compression when there is one: neither can be swapped unseen."""
    compression = metadata.get(META_COMPRESSION)
    return kid.encode() if compression is None else kid.encode() + b"|" + compression


def _decrypt(ring: Keyring | None, payload: Payload) -> Payload:
    kid = payload.metadata.get(META_KEY_ID, b"").decode(errors="replace")
    if ring is None:
        raise CodecError(
            f"a payload is encrypted (key {kid!r}) and no codec keyring is configured:"
            " set KEEL_CODEC_KEYS to the keyring file (docs/security.md)"
        )
    key = ring.keys.get(kid)
    if key is None:
        known = ", ".join(sorted(ring.keys))
        raise CodecError(
            f"a payload is encrypted with key {kid!r}, which {ring.source} does not hold"
            f" (it has {known})"
        )
    data = payload.data
    if len(data) < NONCE_BYTES + TAG_BYTES:
        raise CodecError(f"a payload encrypted with key {kid!r} is truncated")
    try:
        associated = _associated(kid, payload.metadata)
        plain = AESGCM(key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], associated)
    except InvalidTag:
        raise CodecError(
            f"a payload encrypted with key {kid!r} failed authentication: it was altered,"
            " or was not encrypted with this keyring's key of that id"
        ) from None
    if payload.metadata.get(META_COMPRESSION) == ZLIB:
        try:
            plain = zlib.decompress(plain)
        except zlib.error:
            raise CodecError(f"a payload encrypted with key {kid!r} does not decompress") from None
    try:
        return Payload.FromString(plain)
    except DecodeError:
        raise CodecError(f"a payload decrypted with key {kid!r} is not a payload") from None


def data_converter(
    codec_keys: Path | None, storage: ExternalStorage | None = None
) -> DataConverter:
    """Keel's DataConverter: pydantic models as JSON, then the payload codec, then (with
    ``storage``, keel/runtime/store/payloads.py ``external_storage(settings)``) the content
    store for payloads over the threshold.

    With a keyring (``Settings.codec_keys``) every payload is encrypted and failures carry
    their message and stack trace in an encoded (so encrypted) attribute
    (``DefaultFailureConverterWithEncodedAttributes``). Without one nothing is encrypted, and
    reading an encrypted payload fails with a CodecError naming KEEL_CODEC_KEYS. The SDK
    encodes before it stores, so a stored payload is as encrypted as one in history.
    """
    if codec_keys is None:
        return DataConverter(
            payload_converter_class=PydanticPayloadConverter,
            payload_codec=EncryptionCodec(None),
            external_storage=storage,
        )
    return DataConverter(
        payload_converter_class=PydanticPayloadConverter,
        payload_codec=EncryptionCodec(KeyringFile(codec_keys)),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
        external_storage=storage,
    )
