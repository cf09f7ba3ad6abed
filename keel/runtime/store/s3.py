"""The content store in S3 or an S3-compatible server: ``KEEL_STORE=s3://bucket/prefix``.

``KEEL_STORE_ENDPOINT_URL`` names an S3-compatible server (MinIO, moto, Ceph); empty means
AWS. Credentials and region come from the usual AWS places (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``, ``AWS_PROFILE``, an
instance role), read by boto's own chain: Keel never sees them.

One :class:`S3Connection` (an ``aioboto3`` session) serves both users of the bucket: the
content store's :class:`S3Blobs` (keys ``<prefix>content/…``) and the SDK's
``S3StorageDriver`` for payloads over the threshold, through :class:`S3PayloadClient`
(keys ``<prefix>payloads/v0/…``; keel/runtime/store/payloads.py). An aioboto3 client belongs
to the event loop that opened it, so the connection keeps one per loop, opened on first use.

Every failure is a :class:`StoreError` of one line naming the store, the key and what failed
(a missing key is :class:`ContentMissing`); :func:`check_store` runs one request at worker
start so a wrong bucket, endpoint or credential is seen there, not at the first large payload.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)
from temporalio.contrib.aws.s3driver import S3StorageDriverClient

from keel.contracts.errors import ConfigError
from keel.runtime.store.blobs import ContentMissing, StoreError, check_key

S3_SCHEME = "s3://"
# S3's bucket naming rules (3-63 characters, lower case, digits, dots and hyphens).
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9!_.*'()/-]{0,400}$")
PAYLOADS_PREFIX = "payloads/"  # the SDK driver's keys (v0/…) go under <prefix>payloads/
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
EXISTS_CODES = frozenset({"412", "PreconditionFailed", "409", "ConditionalRequestConflict"})
CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=60,
    retries={"max_attempts": 3, "mode": "standard"},
)


@dataclass(frozen=True)
class S3Location:
    """Where the store is: bucket, key prefix (``""`` or ending in ``/``), endpoint."""

    bucket: str
    prefix: str = ""
    endpoint_url: str = ""

    @classmethod
    def parse(cls, value: str, endpoint_url: str = "") -> S3Location:
        """``s3://bucket`` or ``s3://bucket/some/prefix``; ConfigError naming what is wrong."""
        rest = value.strip().removeprefix(S3_SCHEME)
        bucket, _, prefix = rest.partition("/")
        if not BUCKET_PATTERN.match(bucket):
            raise ConfigError(
                f"KEEL_STORE={value!r}: {bucket!r} is not an S3 bucket name"
                " (3-63 characters: lower-case letters, digits, '.', '-')"
            )
        prefix = prefix.strip("/")
        if not PREFIX_PATTERN.match(prefix) or ".." in prefix or "//" in prefix:
            raise ConfigError(
                f"KEEL_STORE={value!r}: the key prefix {prefix!r} may hold only letters, digits"
                " and !_.*'()/- (no '..', no '//')"
            )
        if endpoint_url and not endpoint_url.startswith(("http://", "https://")):
            raise ConfigError(f"KEEL_STORE_ENDPOINT_URL={endpoint_url!r} is not an http(s):// URL")
        return cls(bucket, f"{prefix}/" if prefix else "", endpoint_url.rstrip("/"))

    def describe(self) -> str:
        where = f"{S3_SCHEME}{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def key(self, key: str) -> str:
        return self.prefix + key


class S3Connection:
    """The aioboto3 session of one location and its clients, one per event loop."""

    def __init__(self, location: S3Location) -> None:
        self.location = location
        self._session = aioboto3.Session()
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}

    async def client(self) -> Any:
        """This event loop's S3 client (``types_aiobotocore_s3``'s ``S3Client``)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            opened = await self._session.client(
                "s3", endpoint_url=self.location.endpoint_url or None, config=CLIENT_CONFIG
            ).__aenter__()
            client = self._clients.setdefault(loop, opened)
            if client is not opened:  # another task of this loop opened one meanwhile
                await opened.close()
        return client

    async def close(self) -> None:
        """Close this event loop's client (a later call opens a new one)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()

    def failure(self, action: str, key: str | None, exc: Exception) -> StoreError:
        """One readable line for a failed request (``ContentMissing`` for a missing key)."""
        where = self.location.describe()
        if key is not None and error_code(exc) in MISSING_CODES:
            return ContentMissing(f"the content store {where} holds no {key}")
        target = f" {key}" if key else ""
        return StoreError(f"content store {where}: {action}{target} failed: {_reason(exc)}")


def error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get(
            "HTTPStatusCode", ""))  # fmt: skip
    return ""


def _reason(exc: Exception) -> str:
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or"
            " AWS_PROFILE, or run with an instance role)"
        )
    if isinstance(exc, EndpointConnectionError):
        return f"cannot connect ({exc})"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code == "NoSuchBucket":
            return "NoSuchBucket: the bucket does not exist"
        message = exc.response.get("Error", {}).get("Message") or ""
        return f"{code}: {message}" if message else code
    if isinstance(exc, BotoCoreError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class S3Blobs:
    """Immutable blobs (the :class:`~keel.runtime.store.blobs.BlobStore` protocol) in S3."""

    def __init__(self, connection: S3Connection) -> None:
        self.connection = connection
        self.location = connection.location

    def describe(self) -> str:
        return self.location.describe()

    async def put(self, key: str, data: bytes) -> None:
        """Write once: ``If-None-Match: *`` makes a second put of a key a no-op (a server that
        ignores the header rewrites the same content, which is as good)."""
        name = self.location.key(check_key(key))
        try:
            client = await self.connection.client()
            await client.put_object(
                Bucket=self.location.bucket, Key=name, Body=data, IfNoneMatch="*"
            )
        except ClientError as exc:
            if error_code(exc) in EXISTS_CODES:
                return
            raise self.connection.failure("writing", name, exc) from None
        except (BotoCoreError, OSError) as exc:
            raise self.connection.failure("writing", name, exc) from None

    async def get(self, key: str) -> bytes:
        name = self.location.key(check_key(key))
        try:
            client = await self.connection.client()
            response = await client.get_object(Bucket=self.location.bucket, Key=name)
            async with response["Body"] as body:
                data: bytes = await body.read()
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self.connection.failure("reading", name, exc) from None
        return data

    async def exists(self, key: str) -> bool:
        name = self.location.key(check_key(key))
        return await head(self.connection, name)


async def head(connection: S3Connection, name: str) -> bool:
    """Whether the object ``name`` (a full key) exists; False on 404, StoreError otherwise."""
    try:
        client = await connection.client()
        await client.head_object(Bucket=connection.location.bucket, Key=name)
    except ClientError as exc:
        if error_code(exc) in MISSING_CODES:
            return False
        raise connection.failure("checking", name, exc) from None
    except (BotoCoreError, OSError) as exc:
        raise connection.failure("checking", name, exc) from None
    return True


async def check_store(connection: S3Connection) -> None:
    """One request (HeadBucket) that proves the bucket is there and the credentials work."""
    try:
        client = await connection.client()
        await client.head_bucket(Bucket=connection.location.bucket)
    except ClientError as exc:
        code = error_code(exc)
        hint = {
            "404": "the bucket does not exist (create it first)",
            "NoSuchBucket": "the bucket does not exist (create it first)",
            "403": "access denied (check the credentials and the bucket policy)",
        }.get(code, _reason(exc))
        raise StoreError(f"content store {connection.location.describe()}: {hint}") from None
    except (BotoCoreError, OSError) as exc:
        raise connection.failure("opening the bucket", None, exc) from None


class S3PayloadClient(S3StorageDriverClient):
    """The object operations of the SDK's ``S3StorageDriver`` over Keel's connection.

    The driver names keys ``v0/…``; they are kept under ``<prefix>payloads/`` (a claim in
    history names the key without the prefix, so the prefix must not change while references
    to it live). Failures are :class:`StoreError` lines; the driver wraps them in its own
    ``RuntimeError``, which keel/runtime/store/payloads.py turns back into one line.
    """

    def __init__(self, connection: S3Connection) -> None:
        self.connection = connection

    def _name(self, key: str) -> str:
        return self.connection.location.key(PAYLOADS_PREFIX + key)

    def describe(self) -> Mapping[str, str]:
        location = self.connection.location
        return {"endpoint": location.endpoint_url} if location.endpoint_url else {}

    async def object_exists(self, *, bucket: str, key: str) -> bool:
        return await head(self.connection, self._name(key))

    async def put_object(self, *, bucket: str, key: str, data: bytes) -> None:
        name = self._name(key)
        try:
            client = await self.connection.client()
            await client.put_object(Bucket=bucket, Key=name, Body=data)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self.connection.failure("writing", name, exc) from None

    async def get_object(self, *, bucket: str, key: str) -> bytes:
        name = self._name(key)
        try:
            client = await self.connection.client()
            response = await client.get_object(Bucket=bucket, Key=name)
            async with response["Body"] as body:
                data: bytes = await body.read()
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self.connection.failure("reading", name, exc) from None
        return data
