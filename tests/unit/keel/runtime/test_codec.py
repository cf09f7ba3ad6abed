"""The payload codec (keel/runtime/codec.py): AES-256-GCM over whole payloads, key ids in the
metadata, rotation, and clear one-line errors for unknown keys and altered payloads."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from keel.contracts import AgentInput, Principal
from keel.contracts.errors import ConfigError
from keel.runtime.codec import (
    ENCODING,
    META_KEY_ID,
    CodecError,
    EncryptionCodec,
    Keyring,
    KeyringFile,
    data_converter,
)
from keel.runtime.keys import LocalKeys, rotate_codec_key

SECRET = "maria.lopez@example.com"


def plain_payload(text: str = SECRET) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([{"task": text}])[0]


def ring(*kids: str, encrypt_with: str | None = None) -> Keyring:
    keys = {kid: os.urandom(32) for kid in kids}
    return Keyring(encrypt_with=encrypt_with or kids[0], keys=keys)


@pytest.fixture
def keyring_path(keys: LocalKeys) -> Path:
    """The codec keyring file of a fresh key directory (tests/unit/conftest.py's ``keys``)."""
    return keys.codec_keys


async def test_a_payload_round_trips_and_nothing_of_it_is_readable() -> None:
    codec = EncryptionCodec(ring("k-1"))
    original = plain_payload()

    [encrypted] = await codec.encode([original])
    [decrypted] = await codec.decode([encrypted])

    assert decrypted == original
    assert dict(encrypted.metadata) == {"encoding": ENCODING, META_KEY_ID: b"k-1"}
    wire = encrypted.SerializeToString()
    assert SECRET.encode() not in wire
    assert b"json/plain" not in wire  # the original's metadata is encrypted too


async def test_every_encryption_uses_a_fresh_nonce() -> None:
    codec = EncryptionCodec(ring("k-1"))
    first, second = await codec.encode([plain_payload(), plain_payload()])
    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


async def test_after_rotation_old_payloads_still_decrypt_and_new_ones_use_the_new_key(
    keyring_path: Path,
) -> None:
    codec = EncryptionCodec(KeyringFile(keyring_path))
    [old] = await codec.encode([plain_payload("before")])
    old_kid = old.metadata[META_KEY_ID].decode()

    new_kid = rotate_codec_key(keyring_path.parent)
    [new] = await codec.encode([plain_payload("after")])  # the same object sees the new file

    assert new_kid != old_kid
    assert new.metadata[META_KEY_ID] == new_kid.encode()
    fresh = EncryptionCodec(KeyringFile(keyring_path))  # as a process started after the rotation
    assert await fresh.decode([old, new]) == [plain_payload("before"), plain_payload("after")]


async def test_an_unknown_key_id_is_one_line_naming_it() -> None:
    [encrypted] = await EncryptionCodec(ring("k-gone")).encode([plain_payload()])

    with pytest.raises(CodecError) as info:
        await EncryptionCodec(ring("k-1", "k-2")).decode([encrypted])

    message = str(info.value)
    assert "'k-gone'" in message and "k-1, k-2" in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize("where", ["ciphertext", "nonce", "tag"])
async def test_an_altered_payload_fails_authentication(where: str) -> None:
    codec = EncryptionCodec(ring("k-1"))
    [encrypted] = await codec.encode([plain_payload()])
    data = bytearray(encrypted.data)
    data[{"nonce": 0, "ciphertext": 20, "tag": -1}[where]] ^= 0x01
    altered = Payload(metadata=encrypted.metadata, data=bytes(data))

    with pytest.raises(CodecError, match="key 'k-1' failed authentication: it was altered"):
        await codec.decode([altered])


async def test_a_payload_relabelled_with_another_key_id_fails_authentication() -> None:
    keyring = ring("k-1", "k-2")
    [encrypted] = await EncryptionCodec(keyring).encode([plain_payload()])
    relabelled = Payload(metadata={**encrypted.metadata, META_KEY_ID: b"k-2"}, data=encrypted.data)

    with pytest.raises(CodecError, match="failed authentication"):
        await EncryptionCodec(keyring).decode([relabelled])


async def test_a_truncated_payload_is_refused() -> None:
    codec = EncryptionCodec(ring("k-1"))
    [encrypted] = await codec.encode([plain_payload()])
    cut = Payload(metadata=encrypted.metadata, data=encrypted.data[:20])
    with pytest.raises(CodecError, match="truncated"):
        await codec.decode([cut])


async def test_plaintext_payloads_pass_through_decoding() -> None:
    """Histories recorded before the codec, and CLI input sent without --codec-endpoint."""
    original = plain_payload()
    assert await EncryptionCodec(ring("k-1")).decode([original]) == [original]
    assert await EncryptionCodec(None).decode([original]) == [original]


async def test_without_a_keyring_nothing_is_encrypted_and_reading_says_what_is_missing() -> None:
    original = plain_payload()
    assert await EncryptionCodec(None).encode([original]) == [original]
    [encrypted] = await EncryptionCodec(ring("k-1")).encode([original])

    with pytest.raises(CodecError, match="no codec keyring is configured: set KEEL_CODEC_KEYS"):
        await EncryptionCodec(None).decode([encrypted])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not JSON"),
        ('{"keys": []}', 'expected {"encrypt_with"'),
        ('{"encrypt_with": "k-1", "keys": {"k-1": "c2hvcnQ="}}', "'k-1' is not 32 bytes"),
        ('{"encrypt_with": "k-1", "keys": {"k-1": "not base64!"}}', "'k-1' is not 32 bytes"),
        (
            json.dumps(
                {"encrypt_with": "k-9", "keys": {"k-1": base64.b64encode(b"k" * 32).decode()}}
            ),
            "encrypt_with 'k-9' is not one of its keys (k-1)",
        ),
    ],
)
def test_a_bad_keyring_file_is_one_line_naming_the_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "codec-keys.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        KeyringFile(path)
    message = str(info.value)
    assert message.startswith(f"codec keyring {path}: ")
    assert expected in message and len(message.splitlines()) == 1


async def test_a_keyring_file_broken_later_keeps_the_keys_read_before(keyring_path: Path) -> None:
    source = KeyringFile(keyring_path)
    codec = EncryptionCodec(source)
    [encrypted] = await codec.encode([plain_payload()])
    keyring_path.write_text("{half a file")

    assert await codec.decode([encrypted]) == [plain_payload()]


async def test_the_data_converter_encrypts_values_and_reads_them_back(keyring_path: Path) -> None:
    converter = data_converter(keyring_path)
    value = AgentInput(profile="support", task=SECRET, principal=Principal(id="p", roles=[]))

    [payload] = await converter.encode([value])
    [back] = await converter.decode([payload], [AgentInput])

    assert payload.metadata["encoding"] == ENCODING
    assert SECRET.encode() not in payload.SerializeToString()
    assert back == value


async def test_failure_messages_and_stack_traces_are_encrypted(keyring_path: Path) -> None:
    converter = data_converter(keyring_path)
    try:
        raise ApplicationError(f"no customer {SECRET}", type="NotFound")
    except ApplicationError as exc:
        error = exc
    failure = Failure()

    await converter.encode_failure(error, failure)

    assert failure.message == "Encoded failure" and failure.stack_trace == ""
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    assert SECRET.encode() not in failure.SerializeToString()
    assert b"test_codec.py" not in failure.SerializeToString()  # the stack trace
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    assert decoded.message == f"no customer {SECRET}" and decoded.type == "NotFound"


async def test_without_keys_the_converter_is_plain_pydantic() -> None:
    converter = data_converter(None)
    [payload] = await converter.encode([{"task": SECRET}])
    assert payload.metadata["encoding"] == b"json/plain"
    assert converter.failure_converter_class is pydantic_data_converter.failure_converter_class


async def test_a_large_payload_is_compressed_inside_the_seal_its_flag_authenticated() -> None:
    from keel.runtime.codec import META_COMPRESSION

    codec = EncryptionCodec(ring("k-1"))
    text = (SECRET + " ordered ORD-1042; ") * 2000
    original = plain_payload(text)
    [sealed] = await codec.encode([original])
    assert sealed.metadata[META_COMPRESSION] == b"zlib"
    assert len(sealed.data) < len(original.data) // 10  # stored, and counted by Temporal, small
    assert SECRET.encode() not in sealed.data
    [back] = await codec.decode([sealed])
    assert back == original
    # Dropping the flag (or claiming it on a payload that has none) fails authentication.
    stripped = Payload()
    stripped.CopyFrom(sealed)
    del stripped.metadata[META_COMPRESSION]
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.decode([stripped])
    [small] = await codec.encode([plain_payload("short")])
    assert META_COMPRESSION not in small.metadata  # under 1 KiB: left as it is
    forged = Payload()
    forged.CopyFrom(small)
    forged.metadata[META_COMPRESSION] = b"zlib"
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.decode([forged])
