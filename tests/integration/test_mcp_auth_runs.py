"""Runs through the worker with the servers' token checks on (the whole suite runs so).

The worker mints a fresh access token for every HTTP request: the run's principal as
``sub``, the worker as ``act``, the workflow id as ``keel_run``. The servers log who called;
a token a server refuses (wrong scopes, a key it does not trust) fails the run with failure
class ``access_denied`` in one line naming the server, the status and the server's reason.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from temporalio.client import Client

from keel.contracts import AgentInput, Principal, RunResult
from keel.runtime.keys import ensure_local_keys
from keel.stack import Stack
from tests.helpers import private_worker, start


def calls_logged(stack: Stack, server: str, run_id: str) -> list[dict[str, Any]]:
    """The ``tool call`` lines a server of the stack logged for one run."""
    lines = stack.log_path(server).read_text().splitlines()
    parsed = [json.loads(line) for line in lines if line.startswith("{") and run_id in line]
    return [line for line in parsed if line.get("event") == "tool call"]


async def test_the_principal_reaches_the_server_in_the_token(client: Client, stack: Stack) -> None:
    handle = await start(client, "report")
    result = await handle.result()
    assert result.status == "completed", result.error
    logged = calls_logged(stack, "support_desk", handle.id)
    assert [line["tool"] for line in logged] == ["get_order", "get_order"]
    for line in logged:
        # tests/helpers.start runs as Principal(id="tester", roles=["agent"])
        assert (line["sub"], line["roles"], line["keel_run"]) == ("tester", ["agent"], handle.id)
        assert (line["act"], line["client_id"]) == ({"sub": "keel-worker"}, "keel-worker")


async def test_a_token_without_the_tools_scope_fails_the_run_access_denied(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "wrong_scope")
    result = await handle.result()
    assert (result.status, result.failure_class) == ("failed", "access_denied"), result.error
    assert result.error is not None and "\n" not in result.error
    assert (
        "MCP server 'support_desk' refused the request: HTTP 403 insufficient_scope:"
        " this call needs the scope desk:read"
    ) in result.error
    step = next(s for s in result.steps if s.kind == "tool")
    assert (step.outcome, step.attempts) == ("failed", 1)  # refused once, never retried
    assert calls_logged(stack, "support_desk", handle.id) == []  # the tool never ran


@contextlib.asynccontextmanager
async def worker_with_a_foreign_key(stack: Stack, tmp: Path) -> AsyncIterator[str]:
    """An in-process worker on a private task queue whose signing key the stack's servers do
    not trust; yields the task queue."""
    foreign = ensure_local_keys(tmp / "foreign-keys")
    env = {"KEEL_SIGNING_KEY": str(foreign.signing_key)}
    async with private_worker(stack, "foreign-key", env) as queue:
        yield queue


async def test_a_worker_the_servers_do_not_trust_fails_the_run_access_denied(
    client: Client, stack: Stack, tmp_path: Path
) -> None:
    async with worker_with_a_foreign_key(stack, tmp_path) as queue:
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(profile="report", task="ORD-1042?",
                       principal=Principal(id="tester", roles=["agent"])),
            id=f"test-foreign-key-{uuid.uuid4().hex[:10]}", task_queue=queue,
            result_type=RunResult,
        )  # fmt: skip
        result = await handle.result()
    assert (result.status, result.failure_class) == ("failed", "access_denied"), result.error
    assert result.error == (
        "MCP server 'support_desk' (list tools): MCP server 'support_desk' refused the request:"
        " HTTP 401 invalid_token: Authentication required"
    )
