"""The content store and the local payload driver on a real directory: round trips, write
once, and what is refused (a digest that does not match, a key that is not a store key)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ExternalStorage,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)

from keel.contracts.content import content_digest
from keel.contracts.errors import ConfigError
from keel.runtime.codec import EncryptionCodec, KeyringFile, data_converter
from keel.runtime.config import Settings
from keel.runtime.keys import LocalKeys
from keel.runtime.store.blobs import ContentMissing, LocalBlobs, StoreError
from keel.runtime.store.content import ContentCorrupt, ContentStore, content_key
from keel.runtime.store.open import open_content_store, verify_store
from keel.runtime.store.payloads import LOCAL_DRIVER, LocalStorageDriver, external_storage

MARKER = "PLAINTEXT-MARKER-7f3a"
STORE = StorageDriverStoreContext()
RETRIEVE = StorageDriverRetrieveContext()


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


# --------------------------------------------------------------------------- ContentStore


async def test_content_round_trip_is_sealed_and_digest_addressed(
    tmp_path: Path, keys: LocalKeys
) -> None:
    codec = EncryptionCodec(KeyringFile(keys.codec_keys))
    store = ContentStore(LocalBlobs(tmp_path / "store"), codec)
    data = f"{MARKER} the whole article".encode()
    ref = await store.put(data, "text/plain")
    assert ref.digest == content_digest(data) and ref.size == len(data)
    # A fresh store (no cache) reads it back from the directory.
    fresh = ContentStore(LocalBlobs(tmp_path / "store"), codec)
    assert await fresh.get(ref) == data
    stored = files(tmp_path / "store")
    assert list(stored) == [content_key(ref.digest)]
    assert MARKER.encode() not in stored[content_key(ref.digest)]


async def test_content_put_twice_writes_once(tmp_path: Path, keys: LocalKeys) -> None:
    codec = EncryptionCodec(KeyringFile(keys.codec_keys))
    first = await ContentStore(LocalBlobs(tmp_path / "store"), codec).put_json({"a": 1})
    blob = files(tmp_path / "store")[content_key(first.digest)]
    again = await ContentStore(LocalBlobs(tmp_path / "store"), codec).put_json({"a": 1})
    assert again == first
    assert files(tmp_path / "store") == {content_key(first.digest): blob}  # not rewritten


async def test_content_under_the_wrong_digest_is_refused(tmp_path: Path, keys: LocalKeys) -> None:
    codec = EncryptionCodec(KeyringFile(keys.codec_keys))
    one = await ContentStore(LocalBlobs(tmp_path), codec).put(b"one")
    two = await ContentStore(LocalBlobs(tmp_path), codec).put(b"two")
    # Swap the blobs: each key now holds the other content, validly sealed.
    path_one, path_two = tmp_path / content_key(one.digest), tmp_path / content_key(two.digest)
    blob_one, blob_two = path_one.read_bytes(), path_two.read_bytes()
    path_one.write_bytes(blob_two)
    path_two.write_bytes(blob_one)
    with pytest.raises(ContentCorrupt, match="returned other content"):
        await ContentStore(LocalBlobs(tmp_path), codec).get(one)


async def test_unknown_content_is_content_missing(tmp_path: Path) -> None:
    store = ContentStore(LocalBlobs(tmp_path), EncryptionCodec(None))
    with pytest.raises(ContentMissing, match="holds no content/"):
        await store.get(content_digest(b"never stored"))


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "Content/AB", "a/../../b", ""])
async def test_a_bad_key_is_refused(tmp_path: Path, key: str) -> None:
    blobs = LocalBlobs(tmp_path / "store")
    with pytest.raises(StoreError, match="invalid store key"):
        await blobs.put(key, b"x")
    with pytest.raises(StoreError, match="invalid store key"):
        await blobs.get(key)
    assert not (tmp_path / "store").exists()


def test_open_content_store_follows_the_settings(tmp_path: Path, keys: LocalKeys) -> None:
    env = {"KEEL_HOME": str(tmp_path), "KEEL_CODEC_KEYS": str(keys.codec_keys)}
    assert open_content_store(Settings.from_env(env)).describe() == str(tmp_path / "store")
    other = {**env, "KEEL_STORE": str(tmp_path / "elsewhere")}
    assert open_content_store(Settings.from_env(other)).describe() == str(tmp_path / "elsewhere")


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("s3://", "is not an S3 bucket name"),
        ("s3://Upper_Case/x", "'Upper_Case' is not an S3 bucket name"),
        ("s3://keel-bucket/a/../b", "the key prefix"),
    ],
)
def test_a_malformed_s3_store_is_a_config_error(store: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_content_store(Settings.from_env({"KEEL_STORE": store}))


async def test_a_store_that_is_not_a_directory_fails_the_check(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    settings = Settings.from_env({"KEEL_STORE": str(tmp_path / "file" / "store")})
    with pytest.raises(StoreError, match=r"content store .*file/store is not a writable directory"):
        await verify_store(settings)
    ok = Settings.from_env({"KEEL_STORE": str(tmp_path / "new" / "store")})
    assert await verify_store(ok) == str(tmp_path / "new" / "store")
    assert (tmp_path / "new" / "store").is_dir()


# --------------------------------------------------------------------------- LocalStorageDriver


async def test_driver_round_trip_and_claims(tmp_path: Path) -> None:
    driver = LocalStorageDriver(LocalBlobs(tmp_path))
    big, small = payload("x" * 1000), payload("y")
    claims = await driver.store(STORE, [big, small])
    digests = [hashlib.sha256(p.SerializeToString()).hexdigest() for p in (big, small)]
    assert [c.claim_data for c in claims] == [
        {"key": f"payloads/{d}", "sha256": d} for d in digests
    ]
    assert sorted(files(tmp_path)) == sorted(f"payloads/{d}" for d in digests)
    assert await LocalStorageDriver(LocalBlobs(tmp_path)).retrieve(RETRIEVE, claims) == [big, small]


async def test_driver_store_twice_is_idempotent(tmp_path: Path) -> None:
    driver = LocalStorageDriver(LocalBlobs(tmp_path))
    [first] = await driver.store(STORE, [payload("same")])
    before = files(tmp_path)
    [second] = await driver.store(STORE, [payload("same")])
    assert second == first
    assert files(tmp_path) == before


async def test_driver_refuses_a_blob_that_is_not_the_claimed_one(tmp_path: Path) -> None:
    driver = LocalStorageDriver(LocalBlobs(tmp_path))
    [claim] = await driver.store(STORE, [payload("original")])
    (tmp_path / claim.claim_data["key"]).write_bytes(payload("forged").SerializeToString())
    with pytest.raises(ContentCorrupt, match="sha256 mismatch"):
        await driver.retrieve(RETRIEVE, [claim])


@pytest.mark.parametrize(
    "claim",
    [
        {"key": "../../etc/passwd", "sha256": "0" * 64},
        {"key": "content/ab/" + "0" * 64, "sha256": "0" * 64},
        {"key": "payloads/" + "0" * 64, "sha256": "1" * 64},
        {"key": "payloads/XYZ", "sha256": "XYZ"},
        {},
    ],
    ids=["traversal", "other-key-space", "key-digest-differ", "not-hex", "empty"],
)
async def test_driver_refuses_a_bad_claim(tmp_path: Path, claim: dict[str, str]) -> None:
    driver = LocalStorageDriver(LocalBlobs(tmp_path))
    with pytest.raises(StoreError, match="refused"):
        await driver.retrieve(RETRIEVE, [StorageDriverClaim(claim)])


async def test_driver_of_a_missing_payload_is_content_missing(tmp_path: Path) -> None:
    driver = LocalStorageDriver(LocalBlobs(tmp_path))
    claim = StorageDriverClaim({"key": "payloads/" + "a" * 64, "sha256": "a" * 64})
    with pytest.raises(ContentMissing):
        await driver.retrieve(RETRIEVE, [claim])


# --------------------------------------------------------------------------- the converter


def test_external_storage_follows_the_settings(tmp_path: Path) -> None:
    storage = external_storage(Settings.from_env({"KEEL_HOME": str(tmp_path)}))
    assert isinstance(storage, ExternalStorage)
    assert storage.payload_size_threshold == 128 * 1024
    [driver] = storage.drivers
    assert isinstance(driver, LocalStorageDriver) and driver.name() == LOCAL_DRIVER
    assert driver.blobs.describe() == str(tmp_path / "store")
    env = {"KEEL_HOME": str(tmp_path), "KEEL_PAYLOAD_THRESHOLD": "4096"}
    assert external_storage(Settings.from_env(env)).payload_size_threshold == 4096  # type: ignore[union-attr]
    assert external_storage(Settings()) is None  # no store configured


async def test_a_large_value_is_stored_encrypted_and_read_back(
    tmp_path: Path, keys: LocalKeys
) -> None:
    settings = Settings.from_env({"KEEL_HOME": str(tmp_path), "KEEL_PAYLOAD_THRESHOLD": "4096"})
    converter = data_converter(keys.codec_keys, external_storage(settings))
    # Random text: it does not compress under the threshold (text that does stays inline).
    big = {
        "task": MARKER + __import__("base64").b64encode(__import__("os").urandom(10_000)).decode()
    }
    [stored_big, inline] = await converter.encode([big, {"task": "small"}])
    # The large value is a reference in history; the small one stays inline (encrypted).
    assert stored_big.metadata["encoding"] == b"json/protobuf"
    assert inline.metadata["encoding"] == b"binary/encrypted"
    assert MARKER.encode() not in stored_big.SerializeToString()
    [blob] = files(tmp_path / "store").values()
    assert MARKER.encode() not in blob  # stored sealed by the codec
    assert b"binary/encrypted" in blob
    assert await converter.decode([stored_big, inline], [dict, dict]) == [big, {"task": "small"}]


async def test_text_is_stored_compressed_inside_the_seal_and_read_back_whole(
    tmp_path: Path, keys: LocalKeys
) -> None:
    from keel.runtime.codec import EncryptionCodec, KeyringFile
    from keel.runtime.store.blobs import LocalBlobs
    from keel.runtime.store.content import ContentStore, content_key

    # The codec compresses what it seals (keel/runtime/codec.py).
    store = ContentStore(LocalBlobs(tmp_path), EncryptionCodec(KeyringFile(keys.codec_keys)))
    text = b"order ORD-1042 refunded; " * 4000
    noise = __import__("os").urandom(8192)
    text_ref, noise_ref = await store.put(text), await store.put(noise)
    text_blob = (tmp_path / content_key(text_ref.digest)).read_bytes()
    noise_blob = (tmp_path / content_key(noise_ref.digest)).read_bytes()
    assert len(text_blob) < len(text) // 10  # compressed
    assert len(noise_blob) > len(noise)  # random bytes do not compress: stored as they are
    fresh = ContentStore(LocalBlobs(tmp_path), EncryptionCodec(KeyringFile(keys.codec_keys)))
    assert await fresh.get(text_ref) == text and await fresh.get(noise_ref) == noise
    assert text_ref.size == len(text)
