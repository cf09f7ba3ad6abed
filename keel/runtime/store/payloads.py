"""Payloads over the threshold go to the content store; history keeps a reference.

This is the SDK's external storage (``temporalio.converter.ExternalStorage``): every payload a
client or worker writes (workflow input, activity arguments and results, signals, updates,
queries) that is ``KEEL_PAYLOAD_THRESHOLD`` bytes or more (default 128 KiB) is handed to a
storage driver, and history carries a small ``json/protobuf`` ``ExternalStorageReference``
naming the driver and its claim. Readers with the same store resolve it transparently.

The SDK applies the payload codec first, so what is stored is the encrypted payload
(``binary/encrypted``, keel/runtime/codec.py): the store holds no plaintext when history
holds none. The drivers:

- a directory store (the embedded default, ``<KEEL_HOME>/store``): Keel's
  :class:`LocalStorageDriver`, since the SDK ships a driver for S3 only; blob keys
  ``payloads/<sha256 of the stored payload bytes>``;
- ``s3://bucket/prefix``: the SDK's ``S3StorageDriver`` (keys ``<prefix>payloads/v0/…``),
  through Keel's aioboto3 connection (:class:`~keel.runtime.store.s3.S3PayloadClient`), its
  failures turned into one-line :class:`StoreError` s.

Every process that reads a run (worker, ``keel`` CLI, ``keel.connect``, the demo) must use
the same store as the processes that wrote it: docs/operations.md, "Content store".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.aws.s3driver import S3StorageDriver
from temporalio.converter import (
    ExternalStorage,
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)

from keel.runtime.config import Settings
from keel.runtime.store.blobs import BlobStore, LocalBlobs, StoreError, local_root
from keel.runtime.store.content import ContentCorrupt
from keel.runtime.store.s3 import S3_SCHEME, S3Connection, S3Location, S3PayloadClient

LOCAL_DRIVER = "keel.local"
PAYLOAD_KEY_PREFIX = "payloads/"
HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# The S3 driver refuses larger payloads (its default is 50 MiB; a 50 MB task, encrypted, is
# a little more).
S3_MAX_PAYLOAD_BYTES = 256 * 1024 * 1024


def payload_key(sha256_hex: str) -> str:
    return PAYLOAD_KEY_PREFIX + sha256_hex


class LocalStorageDriver(StorageDriver):
    """Payloads as immutable blobs of a :class:`BlobStore` (a directory: ``LocalBlobs``).

    The claim is ``{"key": "payloads/<hex>", "sha256": "<hex>"}``; ``retrieve`` refuses a
    claim whose key is not that form and a blob whose digest is not the claim's.
    """

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def name(self) -> str:
        return LOCAL_DRIVER

    def type(self) -> str:
        return LOCAL_DRIVER

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        claims = []
        for payload in payloads:
            data = payload.SerializeToString(deterministic=True)
            digest = hashlib.sha256(data).hexdigest()
            await self.blobs.put(payload_key(digest), data)
            claims.append(StorageDriverClaim({"key": payload_key(digest), "sha256": digest}))
        return claims

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        return [await self._retrieve(claim) for claim in claims]

    async def _retrieve(self, claim: StorageDriverClaim) -> Payload:
        key = claim.claim_data.get("key", "")
        digest = claim.claim_data.get("sha256", "")
        if not HEX_SHA256.match(digest) or key != payload_key(digest):
            raise StoreError(
                f"a stored-payload reference names {key!r} / sha256 {digest!r}, not a key of"
                f" the form {PAYLOAD_KEY_PREFIX}<sha256>: refused"
            )
        data = await self.blobs.get(key)
        if hashlib.sha256(data).hexdigest() != digest:
            raise ContentCorrupt(
                f"the content store {self.blobs.describe()} returned other bytes for {key}"
                " (sha256 mismatch): refused"
            )
        try:
            return Payload.FromString(data)
        except DecodeError:
            raise ContentCorrupt(f"stored payload {key} is not a payload") from None


class S3PayloadDriver(S3StorageDriver):
    """The SDK's ``S3StorageDriver`` as it is (name, keys, claims, integrity check), its
    failures raised as one :class:`StoreError` line instead of a ``RuntimeError`` chain."""

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        try:
            return await super().store(context, payloads)
        except (RuntimeError, ValueError) as exc:
            raise _one_line(exc) from None

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        try:
            return await super().retrieve(context, claims)
        except (RuntimeError, ValueError) as exc:
            raise _one_line(exc) from None


def _one_line(exc: Exception) -> StoreError:
    cause = exc.__cause__
    if isinstance(cause, StoreError):
        return type(cause)(str(cause))  # ContentMissing stays ContentMissing
    return StoreError(f"{exc}: {cause}" if cause is not None else str(exc))


def storage_driver(settings: Settings) -> StorageDriver:
    """The driver of ``settings.store``: S3 for ``s3://…``, else the local directory."""
    if settings.store.startswith(S3_SCHEME):
        location = S3Location.parse(settings.store, settings.store_endpoint_url)
        return S3PayloadDriver(
            S3PayloadClient(S3Connection(location)),
            bucket=location.bucket,
            max_payload_size=S3_MAX_PAYLOAD_BYTES,
        )
    return LocalStorageDriver(LocalBlobs(local_root(settings.store)))


def external_storage(settings: Settings) -> ExternalStorage | None:
    """The SDK's ExternalStorage over ``settings.store`` (None when there is no store):
    payloads of ``settings.payload_threshold`` bytes or more are stored, not inlined."""
    if not settings.store:
        return None
    return ExternalStorage(
        drivers=[storage_driver(settings)], payload_size_threshold=settings.payload_threshold
    )
