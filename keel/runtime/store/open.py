"""The content store a process uses, from its settings (``KEEL_STORE``)."""

from __future__ import annotations

from keel.contracts.errors import ConfigError
from keel.runtime.codec import EncryptionCodec, KeyringFile
from keel.runtime.config import Settings
from keel.runtime.store.blobs import BlobStore, LocalBlobs, local_root
from keel.runtime.store.content import ContentStore

S3_SCHEME = "s3://"


def open_blobs(settings: Settings) -> BlobStore:
    """``KEEL_STORE``: a directory (the default, ``<KEEL_HOME>/store``) or ``s3://bucket/prefix``."""
    if settings.store.startswith(S3_SCHEME):
        raise ConfigError("KEEL_STORE=s3://… is not available yet")  # replaced by the S3 backend
    return LocalBlobs(local_root(settings.store))


def open_content_store(settings: Settings) -> ContentStore:
    """The content store, sealed with the codec keyring (``KEEL_CODEC_KEYS``) when there is one."""
    keys = KeyringFile(settings.codec_keys) if settings.codec_keys is not None else None
    return ContentStore(open_blobs(settings), EncryptionCodec(keys))
