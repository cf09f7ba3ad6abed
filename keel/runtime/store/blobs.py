"""Where stored bytes live: keys (``content/ab/abcd…``) to immutable blobs.

A blob is written once and never changed (its key names its content), so ``put`` of a key
that exists is a no-op and any reader may cache what it read. ``LocalBlobs`` is the embedded
default: one file per key under a directory, written to a temporary name and renamed, so a
reader never sees half a blob. The S3 backend is ``keel.runtime.store.s3.S3Blobs``;
``keel.runtime.store.open.check_blobs`` proves either usable at worker start.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from keel.contracts.errors import ConfigError, KeelError

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,500}$")


class StoreError(KeelError):
    """The content store could not be read or written (unreachable, refused, corrupt)."""


class ContentMissing(StoreError):
    """A reference names content the store does not hold (deleted past its retention, or a
    store other than the one that wrote it)."""


class BlobStore(Protocol):
    """Immutable blobs by key."""

    def describe(self) -> str:
        """Where the blobs are, for messages (``/path/to/store``, ``s3://bucket/prefix``)."""
        ...

    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; a key that exists is left as it is."""
        ...

    async def get(self, key: str) -> bytes:
        """The blob under ``key``; :class:`ContentMissing` if there is none."""
        ...

    async def exists(self, key: str) -> bool: ...


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key) or ".." in key:
        raise StoreError(f"invalid store key {key!r}")
    return key


class LocalBlobs:
    """Blobs as files under ``root`` (created on first write, mode 0700)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, self._path(key), data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key, self._path(key))

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def check(self) -> None:
        """The directory exists (or is created, mode 0700) and a file can be written in it."""
        await asyncio.to_thread(self._check)

    def _check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".check-")
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            raise StoreError(
                f"the content store {self.root} is not a writable directory: {exc.strerror or exc}"
            ) from None

    def _put(self, path: Path, data: bytes) -> None:
        if path.is_file():
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            raise StoreError(f"cannot write to the content store {self.root}: {exc}") from None

    def _get(self, key: str, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ContentMissing(f"the content store {self.root} holds no {key}") from None
        except OSError as exc:
            raise StoreError(f"cannot read the content store {self.root}: {exc}") from None


def local_root(value: str) -> Path:
    """The directory of a ``KEEL_STORE`` that is a path (``file://`` or plain)."""
    path = value.removeprefix("file://")
    if not path:
        raise ConfigError("KEEL_STORE is empty: give a directory or s3://bucket/prefix")
    return Path(path).expanduser()
