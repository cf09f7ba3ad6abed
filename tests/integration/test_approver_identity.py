"""Signed decisions (``approvals.require_identity``) on the real stack.

The test profile ``approvals_identity`` proposes a 5.00 refund of ORD-1041 (no other test
refunds it; 64.00 refundable: the approving tests here and in the CLI test take 5.00 each).
Identity tokens are minted as an issuer would, with the stack's local key (TokenSigner), and
verified by the workflow against the keys the ``keel.approvers.keys`` activity loaded from
``KEEL_APPROVER_JWKS`` (the stack's JWKS, or a private worker's, below).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from keel.contracts import AgentInput, Decision, DecisionOutcome, Principal, RunResult, names
from keel.runtime.keys import TokenSigner, ensure_local_keys, rotate_signing_key
from keel.stack import Stack
from tests.helpers import REPO, keel_env, private_worker, start
from tests.integration.test_approvals import pending, refusal
from workflows.agent import AgentWorkflow

PROFILE = "approvals_identity"


def refunds_of_1041(stack: Stack) -> int:
    with sqlite3.connect(stack.config.support_desk_db) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM refunds WHERE order_id = 'ORD-1041'").fetchone()
    return int(count)


def identity(signer: TokenSigner, name: str, roles: list[str], **claims: Any) -> str:
    """An approver's identity token, as the organisation's issuer would sign it."""
    body = {"aud": names.APPROVER_AUDIENCE, "sub": f"uid-{name}", "preferred_username": name,
            "roles": roles, **claims}  # fmt: skip
    return signer.sign(body, typ="JWT", ttl_seconds=300)


def stack_signer(stack: Stack) -> TokenSigner:
    return TokenSigner(stack.config.keys.signing_key.read_bytes())


async def decide(handle: WorkflowHandle[Any, Any], **fields: Any) -> DecisionOutcome:
    return await handle.execute_update("decide", Decision(**fields), result_type=DecisionOutcome)


async def replays(client: Client, handle: WorkflowHandle[Any, Any]) -> bool:
    """The run's (encrypted) history replays, with the stack's converter."""
    replayer = Replayer(workflows=[AgentWorkflow], data_converter=client.data_converter)
    result = await replayer.replay_workflow(await handle.fetch_history())
    return result.replay_failure is None


async def test_forged_roles_or_no_token_are_refused_and_audited(
    client: Client, stack: Stack
) -> None:
    before = refunds_of_1041(stack)
    signer = stack_signer(stack)
    handle = await start(client, PROFILE)
    [request] = await pending(handle)
    assert request.identity_required and request.arguments["order_id"] == "ORD-1041"
    bound = {"approval_id": request.approval_id, "digest": request.digest}
    mallory = identity(signer, "mallory", ["agent"])
    alice = identity(signer, "alice", ["supervisor"])

    # By update: the typed refusal, one line each.
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(handle, **bound, decision="approve", by="alice", roles=["supervisor"])
    assert "requires a signed decision" in refusal(info).message
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(handle, **bound, decision="approve", roles=["supervisor"],
                     identity_token=mallory)  # fmt: skip
    assert "claims role(s) supervisor" in refusal(info).message
    # A valid token whose roles do not qualify: refused by the roles check, the token's roles.
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(handle, **bound, decision="approve", identity_token=mallory)
    assert "mallory (roles: agent) may not decide refund_order" in refusal(info).message
    # By signal: audited as refused.
    await handle.signal("decide", {**bound, "decision": "approve", "by": "mallory",
                                   "roles": ["supervisor"], "identity_token": mallory})  # fmt: skip
    await handle.signal("decide", {**bound, "decision": "approve", "by": "root",
                                   "roles": ["supervisor"]})  # fmt: skip
    assert [r.approval_id for r in await pending(handle)] == [request.approval_id]
    assert refunds_of_1041(stack) == before  # nothing happened

    outcome = await decide(handle, **bound, decision="approve", identity_token=alice)
    assert outcome.accepted and outcome.status == "executed"
    result = await handle.result()

    assert result.status == "completed"
    assert refunds_of_1041(stack) == before + 1
    *refused, approved = result.approvals
    assert [(r.decision, r.by) for r in refused] == [
        ("refused", "alice"), ("refused", None), ("refused", "mallory"), ("refused", "root"),
    ]  # fmt: skip
    assert "requires a signed decision" in refused[0].outcome and refused[0].identity is None
    assert "claims role(s) supervisor" in refused[1].outcome
    assert refused[1].identity is not None and refused[1].identity.name == "mallory"
    assert "claims role(s) supervisor" in refused[2].outcome
    assert "requires a signed decision" in refused[3].outcome
    assert all("\n" not in r.outcome for r in refused)
    assert (approved.decision, approved.by, approved.outcome) == ("approve", "alice", "executed")
    assert approved.identity is not None
    assert (approved.identity.roles, approved.identity.issuer) == (["supervisor"],
                                                                   names.LOCAL_ISSUER)  # fmt: skip
    assert approved.identity.token_id
    # The tokens are bearer credentials: not in the result, the worker log or the progress.
    log = stack.log_path("worker").read_text()
    for token in (mallory, alice):
        assert token not in result.model_dump_json() and token not in log
    assert await replays(client, handle)


def keel_with_token(
    stack: Stack, *args: str, token: str | None
) -> subprocess.CompletedProcess[str]:
    """The ``keel`` CLI with ``token`` (or none) in ``KEEL_IDENTITY_TOKEN``."""
    env = keel_env(stack)
    env.pop("KEEL_IDENTITY_TOKEN", None)
    if token is not None:
        env["KEEL_IDENTITY_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "keel", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)  # fmt: skip


async def test_signed_decisions_from_the_cli(client: Client, stack: Stack) -> None:
    before = refunds_of_1041(stack)
    signer = stack_signer(stack)
    handle = await start(client, PROFILE)
    [request] = await pending(handle)
    run, approval = handle.id, request.approval_id

    listed = keel_with_token(stack, "approvals", "--json", token=None)
    mine = [r for r in json.loads(listed.stdout) if r["workflow_id"] == run]
    assert [r["identity_required"] for r in mine] == [True]

    unsigned = keel_with_token(stack, "approve", run, approval, "--by", "dave", "--role",
                               "supervisor", token=None)  # fmt: skip
    assert unsigned.returncode == 2 and "Traceback" not in unsigned.stderr
    assert unsigned.stderr.strip().splitlines()[-1].startswith(f"keel: run {run} refused")
    assert "requires a signed decision" in unsigned.stderr
    forged = keel_with_token(stack, "approve", run, approval, "--role", "supervisor",
                             "--identity-token", identity(signer, "bob", ["agent"]),
                             token=None)  # fmt: skip
    assert forged.returncode == 2 and "claims role(s) supervisor" in forged.stderr
    assert refunds_of_1041(stack) == before

    # The token from the environment; no --by: the name comes from the token, not $USER.
    approved = keel_with_token(stack, "approve", run, approval, "--role", "supervisor",
                               token=identity(signer, "carol", ["supervisor"]))  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith(f"approved: {approval} in run {run}: executed")
    result = await handle.result()
    assert refunds_of_1041(stack) == before + 1
    assert [(r.decision, r.by) for r in result.approvals] == [
        ("refused", "dave"), ("refused", None), ("approve", "carol"),
    ]  # fmt: skip


async def start_on(client: Client, queue: str) -> WorkflowHandle[Any, RunResult]:
    return await client.start_workflow(
        "AgentWorkflow",
        AgentInput(profile=PROFILE, task="Liam: the vest arrived scuffed.",
                   principal=Principal(id="tester", roles=["agent"])),
        id=f"test-identity-{uuid.uuid4().hex[:10]}", task_queue=queue, result_type=RunResult,
    )  # fmt: skip


async def test_unreadable_approver_keys_fail_the_run_at_start(
    client: Client, stack: Stack, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-jwks.json"
    async with private_worker(stack, "identity", {"KEEL_APPROVER_JWKS": str(missing)}) as queue:
        handle = await start_on(client, queue)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ConfigError"
    assert cause.message == (
        f"approvals.require_identity: cannot read JWKS {missing}: No such file or directory"
    )
    described = await handle.describe()
    assert described.search_attributes.get("KeelFailureClass") == ["config_error"]


async def test_a_rotated_approver_key_is_picked_up(
    client: Client, stack: Stack, tmp_path: Path
) -> None:
    """The issuer rotates its key after the run loaded the keys: the first decision signed
    with the new key makes the run reload them and is accepted. A key nobody publishes is
    refused after one reload, by signal (the reload runs in a task the signal starts) as by
    update."""
    before = refunds_of_1041(stack)
    issuer = ensure_local_keys(tmp_path / "issuer")
    stranger = TokenSigner(ensure_local_keys(tmp_path / "stranger").signing_key.read_bytes())
    async with private_worker(stack, "identity", {"KEEL_APPROVER_JWKS": str(issuer.jwks)}) as queue:
        handle = await start_on(client, queue)
        [request] = await pending(handle)
        bound = {"approval_id": request.approval_id, "digest": request.digest,
                 "decision": "approve"}  # fmt: skip
        eve = identity(stranger, "eve", ["supervisor"])
        for _ in range(2):  # the keys are reloaded for the first one only
            await handle.signal("decide", {**bound, "identity_token": eve})
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await decide(handle, **bound, identity_token=eve)
        assert f"unknown key {stranger.kid!r}" in refusal(info).message
        rotate_signing_key(issuer.directory)
        signer = TokenSigner(issuer.signing_key.read_bytes())
        outcome = await decide(handle, **bound,
                               identity_token=identity(signer, "dana", ["supervisor"]))  # fmt: skip
        result = await handle.result()
    assert outcome.status == "executed" and refunds_of_1041(stack) == before + 1
    assert [(r.decision, r.by) for r in result.approvals] == [
        ("refused", None), ("refused", None), ("refused", None), ("approve", "dana"),
    ]  # fmt: skip
    assert all("unknown key" in r.outcome for r in result.approvals[:3])
    loads = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            loads += event.activity_task_scheduled_event_attributes.activity_type.name == (
                names.ACTIVITY_APPROVER_KEYS
            )
    assert loads == 3  # at the start, once for the stranger's key, once for the new key
    assert await replays(client, handle)
