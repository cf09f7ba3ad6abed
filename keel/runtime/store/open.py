"""The content store a process uses, from its settings (``KEEL_STORE``)."""

from __future__ import annotations

from keel.runtime.codec import EncryptionCodec, KeyringFile
from keel.runtime.config import Settings
from keel.runtime.store.blobs import BlobStore, LocalBlobs, local_root
from keel.runtime.store.content import ContentStore
from keel.runtime.store.s3 import S3_SCHEME, S3Blobs, S3Connection, S3Location, check_store


def open_blobs(settings: Settings) -> BlobStore:
    """``KEEL_STORE``: a directory (the default, ``<KEEL_HOME>/store``) or ``s3://bucket/prefix``
    (``KEEL_STORE_ENDPOINT_URL`` for an S3-compatible server); ConfigError if malformed."""
    if settings.store.startswith(S3_SCHEME):
        location = S3Location.parse(settings.store, settings.store_endpoint_url)
        return S3Blobs(S3Connection(location))
    return LocalBlobs(local_root(settings.store))


def open_content_store(settings: Settings) -> ContentStore:
    """The content store, sealed with the codec keyring (``KEEL_CODEC_KEYS``) when there is one."""
    keys = KeyringFile(settings.codec_keys) if settings.codec_keys is not None else None
    return ContentStore(open_blobs(settings), EncryptionCodec(keys))


async def check_blobs(blobs: BlobStore) -> None:
    """Prove at start-up that the store can be used: S3 answers for the bucket with these
    credentials; a directory exists or can be created and is writable. StoreError (one
    line naming the store) otherwise."""
    if isinstance(blobs, S3Blobs):
        await check_store(blobs.connection)
        return
    if isinstance(blobs, LocalBlobs):
        await blobs.check()


async def verify_store(settings: Settings) -> str:
    """:func:`check_blobs` for ``settings.store`` (nothing to check without one); returns where
    the store is, for the start-up log."""
    if not settings.store:
        return "none"
    blobs = open_blobs(settings)
    try:
        await check_blobs(blobs)
    finally:
        if isinstance(blobs, S3Blobs):
            await blobs.connection.close()
    return blobs.describe()
