"""Content by digest: ``put`` bytes, get a :class:`ContentRef`; ``get`` the bytes back.

The address is the SHA-256 of the plaintext, so storing the same content twice (a retried
activity, a replayed run, two runs reading the same article) writes one blob and gives one
reference. The blob itself is the content sealed by the payload codec (AES-256-GCM with the
codec keyring, keel/runtime/codec.py), so the store holds no plaintext when history holds
none; without a keyring it is stored as it is, like history. ``get`` checks the digest of
what it read: a blob that was altered or swapped is refused, never returned.

The codec compresses what it seals when that helps (text and JSON, most of a conversation:
keel/runtime/codec.py); the digest is always of the content itself.

Blobs are immutable, so reads are cached in memory (bounded by ``cache_bytes``): a model call
that assembles a long conversation reads each message from the store once per worker.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload

from keel.contracts.content import JSON_MEDIA_TYPE, ContentRef, canonical_json, ref_for
from keel.runtime.codec import CodecError, EncryptionCodec
from keel.runtime.store.blobs import BlobStore, StoreError

CONTENT_ENCODING = b"binary/plain"
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024


class ContentCorrupt(StoreError):
    """What the store returned for a digest is not that content."""


def content_key(digest: str) -> str:
    """The blob key of a digest: ``content/ab/abcd…`` (two levels keep directories small)."""
    hexdigest = digest.removeprefix("sha256:")
    return f"content/{hexdigest[:2]}/{hexdigest}"


class ContentStore:
    """Content-addressed, encrypted blobs over a :class:`BlobStore`."""

    def __init__(
        self, blobs: BlobStore, codec: EncryptionCodec, cache_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        self.blobs = blobs
        self._codec = codec
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached = 0
        self._cache_bytes = cache_bytes

    def describe(self) -> str:
        return self.blobs.describe()

    async def put(self, data: bytes, media_type: str = JSON_MEDIA_TYPE) -> ContentRef:
        ref = ref_for(data, media_type)
        key = content_key(ref.digest)
        if ref.digest not in self._cache and not await self.blobs.exists(key):
            inner = Payload(metadata={"encoding": CONTENT_ENCODING}, data=data)
            [sealed] = await self._codec.encode([inner])
            await self.blobs.put(key, sealed.SerializeToString())
        self._remember(ref.digest, data)
        return ref

    async def get(self, ref: ContentRef | str) -> bytes:
        digest = ref if isinstance(ref, str) else ref.digest
        cached = self._cache.get(digest)
        if cached is not None:
            self._cache.move_to_end(digest)
            return cached
        blob = await self.blobs.get(content_key(digest))
        data = await self._open(digest, blob)
        if ref_for(data).digest != digest:
            raise ContentCorrupt(
                f"the content store {self.describe()} returned other content for {digest}"
            )
        self._remember(digest, data)
        return data

    async def put_json(self, value: Any) -> ContentRef:
        return await self.put(canonical_json(value))

    async def get_json(self, ref: ContentRef | str) -> Any:
        data = await self.get(ref)
        try:
            return json.loads(data)
        except ValueError:
            raise ContentCorrupt(f"stored content {_digest(ref)} is not JSON") from None

    async def _open(self, digest: str, blob: bytes) -> bytes:
        try:
            payload = Payload.FromString(blob)
            [plain] = await self._codec.decode([payload])
        except DecodeError:
            raise ContentCorrupt(f"stored content {digest} is not a sealed blob") from None
        except CodecError as exc:
            raise ContentCorrupt(f"stored content {digest}: {exc}") from None
        return plain.data

    def _remember(self, digest: str, data: bytes) -> None:
        if len(data) > self._cache_bytes // 4 or digest in self._cache:
            return
        self._cache[digest] = data
        self._cached += len(data)
        while self._cached > self._cache_bytes:
            _, dropped = self._cache.popitem(last=False)
            self._cached -= len(dropped)


def _digest(ref: ContentRef | str) -> str:
    return ref if isinstance(ref, str) else ref.digest
