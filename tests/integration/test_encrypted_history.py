"""Encrypted payloads on the real stack: the raw history of a run that looked a customer up
holds none of the task, the prompt, the tool arguments and results, nor a failure's message;
``temporal workflow show --codec-endpoint`` (the real Temporal CLI and the stack's codec
server) shows all of them. The codec server's HTTP protocol and CORS answers, spoken by a real
HTTP client to the running server."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx2
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter

from keel.client import start_run
from keel.contracts import AgentInput, Principal, RunResult, names
from keel.runtime.codec import ENCODING
from keel.runtime.config import Settings
from keel.runtime.keys import ensure_local_keys
from keel.stack import Stack, temporal_binary
from mcp_servers.support_desk.seed import CUSTOMERS
from tests.helpers import REPO, keel, keel_env

EMAIL = CUSTOMERS[0][2]  # Maria Lopez, whom sim/support_demo looks up
SECRETS = {
    "system prompt": "You are the customer-support agent of an online outdoor store.",
    "tool argument": "refund policy damaged item",  # search_knowledge's query
    "tool result": "CUS-1001",  # only in search_customers' answer
    "article text": "We want every customer to be happy with their gear.",  # get_article's
    "final answer": "I am sorry your Trail Running Shoes arrived damaged",
    "customer email": EMAIL,  # in the task, an argument and a result
}
_BASE64 = re.compile(r"^[A-Za-z0-9+/]{16,}={0,2}$")


def show(stack: Stack, workflow_id: str, *extra: str) -> str:
    """``temporal workflow show -o json`` as a person runs it; its stdout."""
    argv = [str(temporal_binary()), "workflow", "show", "-w", workflow_id, "-o", "json",
            "--address", stack.config.temporal_address, *extra]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"events"' in done.stdout
    return done.stdout


def readable(output: str) -> str:
    """The output and every base64 string in it decoded: payload bytes may be printed as
    base64, and a secret must not hide there either."""
    texts = [output]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and _BASE64.match(value):
            with contextlib.suppress(binascii.Error, ValueError):
                texts.append(base64.b64decode(value).decode(errors="replace"))

    walk(json.loads(output))
    return "\n".join(texts)


async def test_a_runs_history_is_unreadable_without_the_codec_server_and_readable_with_it(
    client: Client, stack: Stack
) -> None:
    marker = f"KEEL-MARKER-{uuid.uuid4().hex}"
    settings = Settings.from_env(stack.config.worker_env())
    agent_input = AgentInput(
        profile="support_scripted",
        task=f"{marker}: hi, I'm Maria Lopez ({EMAIL}). ORD-1042 arrived damaged. Refund?",
        principal=Principal(id="tester", roles=["agent"]),
    )
    handle = await start_run(client, settings, agent_input)  # Keel's own default workflow id
    result = await handle.result()
    assert result.status == "completed", result.error
    assert marker not in handle.id and EMAIL not in handle.id

    raw = readable(show(stack, handle.id))
    decoded = readable(show(stack, handle.id, "--codec-endpoint", stack.config.codec_url))

    assert ENCODING.decode() in raw  # the payloads are there, encrypted
    assert [name for name, text in {"task marker": marker, **SECRETS}.items() if text in raw] == []
    assert marker in decoded
    assert [name for name, text in SECRETS.items() if text not in decoded] == []


async def test_a_failure_message_is_encrypted_too(client: Client, stack: Stack) -> None:
    """A run that fails on its input: the failure names the offending field (which could be
    anything a caller sent); the message and stack trace travel in encrypted attributes."""
    field = f"keel_marker_{uuid.uuid4().hex}"
    handle = await client.start_workflow(
        names.WORKFLOW_TYPE,
        {"profile": "support", "task": "x", field: EMAIL},
        id=f"test-codec-failure-{uuid.uuid4().hex[:10]}",
        task_queue=names.TASK_QUEUE,
        result_type=RunResult,
    )
    try:
        await handle.result()
    except WorkflowFailureError as exc:
        assert field in str(getattr(exc.cause, "message", ""))  # this client decrypts it
    else:
        raise AssertionError("the run did not fail")

    raw = readable(show(stack, handle.id))
    decoded = readable(show(stack, handle.id, "--codec-endpoint", stack.config.codec_url))

    assert field not in raw and EMAIL not in raw
    assert "Encoded failure" in raw
    assert field in decoded


async def test_the_keel_cli_reads_encrypted_runs_and_without_the_key_says_so_in_one_line(
    client: Client, stack: Stack, tmp_path: Path
) -> None:
    handle = await client.start_workflow(
        names.WORKFLOW_TYPE,
        AgentInput(profile="quick", task=f"hello {EMAIL}", principal=Principal(id="t")),
        id=f"test-codec-cli-{uuid.uuid4().hex[:10]}",
        task_queue=names.TASK_QUEUE,
        result_type=RunResult,
    )
    await handle.result()

    done = keel(stack, "result", handle.id, "--json")  # the stack's client_env(): its keys
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "completed"

    other = ensure_local_keys(tmp_path / "other-keys").codec_keys
    for keys, expected in [
        (str(other), f"which codec keyring {other} does not hold (it has k-"),
        ("", "no codec keyring is configured: set KEEL_CODEC_KEYS"),
    ]:
        env = {**keel_env(stack), "KEEL_CODEC_KEYS": keys}
        refused = subprocess.run(
            [sys.executable, "-m", "keel", "result", handle.id], capture_output=True,
            text=True, env=env, cwd=REPO, timeout=120,
        )  # fmt: skip
        assert refused.returncode == 2, refused.stderr
        [line] = refused.stderr.strip().splitlines()
        assert line.startswith("keel: a payload is encrypted") and expected in line


async def test_input_sent_by_the_temporal_cli_through_the_codec_server_is_encrypted(
    client: Client, stack: Stack
) -> None:
    """``temporal workflow start --codec-endpoint``: the CLI has the codec server encrypt the
    input (POST /encode) before Temporal stores it; the worker decrypts it and runs."""
    marker = f"KEEL-CLI-MARKER-{uuid.uuid4().hex}"
    workflow_id = f"test-codec-start-{uuid.uuid4().hex[:10]}"
    argv = [str(temporal_binary()), "workflow", "start", "--address",
            stack.config.temporal_address, "--codec-endpoint", stack.config.codec_url,
            "--type", names.WORKFLOW_TYPE, "--task-queue", names.TASK_QUEUE,
            "--workflow-id", workflow_id,
            "--input", json.dumps({"profile": "quick", "task": f"{marker} {EMAIL}"})]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    handle = client.get_workflow_handle(workflow_id, result_type=RunResult)
    assert (await handle.result()).status == "completed"
    raw = readable(show(stack, workflow_id))
    assert marker not in raw and EMAIL not in raw
    assert marker in readable(show(stack, workflow_id, "--codec-endpoint", stack.config.codec_url))


def _payloads(response: httpx2.Response) -> Payloads:
    message = Payloads()
    json_format.Parse(response.text, message)
    return message


def test_the_codec_server_round_trips_over_http_and_answers_the_ui_preflight(
    stack: Stack,
) -> None:
    url = stack.config.codec_url
    plain = pydantic_data_converter.payload_converter.to_payloads([{"email": EMAIL}])
    body = json_format.MessageToJson(Payloads(payloads=plain))
    headers = {"Content-Type": "application/json", "X-Namespace": "default"}

    encoded = httpx2.post(f"{url}/encode", content=body, headers=headers, timeout=10)
    assert encoded.status_code == 200, encoded.text
    assert EMAIL not in encoded.text
    assert _payloads(encoded).payloads[0].metadata["encoding"] == ENCODING
    decoded = httpx2.post(f"{url}/decode", content=encoded.text, headers=headers, timeout=10)
    assert decoded.status_code == 200, decoded.text
    assert list(_payloads(decoded).payloads) == list(plain)

    ui = stack.config.ui_origins[0]
    preflight = httpx2.options(
        f"{url}/decode",
        headers={
            "Origin": ui,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type, X-Namespace",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ui
    assert preflight.headers["access-control-allow-credentials"] == "true"
    refused = httpx2.options(
        f"{url}/decode",
        headers={"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "access-control-allow-origin" not in refused.headers


def test_the_temporal_ui_is_pointed_at_the_codec_server(stack: Stack) -> None:
    settings = httpx2.get(
        f"http://{stack.config.host}:{stack.config.ui_port}/api/v1/settings", timeout=10
    ).json()
    assert settings["Codec"]["Endpoint"] == stack.config.codec_url
