"""``keel codec-server`` in this process: the ASGI app through httpx2's ASGI transport (the
same app the stack runs; tests/integration/test_encrypted_history.py talks to the real
server over HTTP), and the command's mistakes as one line and exit 2."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from keel.cli import main
from keel.codec_server import DEFAULT_ORIGINS, build_app, serving_hosts
from keel.runtime.codec import ENCODING, EncryptionCodec, Keyring

UI = "http://127.0.0.1:8233"
SECRET = "+1-415-555-0142"


def body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


def payloads_of(response: httpx2.Response) -> list[Payload]:
    message = Payloads()
    json_format.Parse(response.text, message)
    return list(message.payloads)


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    codec = EncryptionCodec(Keyring(encrypt_with="k-1", keys={"k-1": os.urandom(32)}))
    app = build_app(codec, DEFAULT_ORIGINS, serving_hosts("127.0.0.1", None))
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8205") as client:
        yield client


JSON = {"Content-Type": "application/json", "X-Namespace": "default"}


async def test_encode_then_decode_round_trips(http: httpx2.AsyncClient) -> None:
    plain = pydantic_data_converter.payload_converter.to_payloads([{"phone": SECRET}])[0]

    encoded = await http.post("/encode", content=body(plain), headers=JSON)
    assert encoded.status_code == 200, encoded.text
    assert encoded.headers["content-type"] == "application/json"
    [sealed] = payloads_of(encoded)
    assert sealed.metadata["encoding"] == ENCODING and SECRET not in encoded.text

    decoded = await http.post("/some/prefix/decode", content=encoded.text, headers=JSON)
    assert decoded.status_code == 200, decoded.text
    assert payloads_of(decoded) == [plain]


async def test_the_ui_preflight_is_answered_for_its_origin_with_credentials(
    http: httpx2.AsyncClient,
) -> None:
    preflight = await http.options(
        "/decode",
        headers={
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == UI
    assert preflight.headers["access-control-allow-credentials"] == "true"
    allowed = {
        h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type", "x-namespace"} <= allowed
    assert "POST" in preflight.headers["access-control-allow-methods"]


async def test_another_origin_gets_no_cors_answer(http: httpx2.AsyncClient) -> None:
    preflight = await http.options(
        "/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


async def test_a_foreign_host_name_is_refused(http: httpx2.AsyncClient) -> None:
    """A page that rebinds its own DNS name to 127.0.0.1 sends its name as Host."""
    refused = await http.post(
        "/decode", content=body(), headers={**JSON, "Host": "rebind.evil.example:8205"}
    )
    assert refused.status_code == 400


@pytest.mark.parametrize(
    ("content", "headers", "status", "text"),
    [
        ("{}", {"Content-Type": "text/plain"}, 415, "expected Content-Type: application/json"),
        ("{nope", JSON, 400, "not a Payloads message in JSON"),
        ('{"payloads": [{"metadata": {"encoding": "YmluYXJ5L2VuY3J5cHRlZA==", '
         '"encryption-key-id": "ay0x"}, "data": "' + "A" * 56 + '"}]}',
         JSON, 400, "key 'k-1' failed authentication"),
    ],
)  # fmt: skip
async def test_bad_requests_are_one_line(
    http: httpx2.AsyncClient, content: str, headers: dict[str, str], status: int, text: str
) -> None:
    response = await http.post("/decode", content=content, headers=headers)
    assert response.status_code == status
    assert text in response.text and len(response.text.strip().splitlines()) == 1


async def test_healthz_and_unknown_paths(http: httpx2.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert (await http.post("/transcode", content="{}", headers=JSON)).status_code == 404


def test_the_command_without_a_keyring_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("KEEL_CODEC_KEYS", "")  # explicitly off
    assert main(["codec-server"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("keel: codec-server needs the codec keyring: --keys FILE or KEEL_")

    assert main(["codec-server", "--keys", str(tmp_path / "missing.json")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    missing = tmp_path / "missing.json"
    assert line == f"keel: cannot read the codec keyring {missing}: No such file or directory"
