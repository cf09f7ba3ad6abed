"""A one-attempt write whose answer is lost waits for a human's resolve, on the real stack.

The support desk runs with 1.5 s of latency and ``send_email`` has a 1 s timeout on a server
not marked deduplicating: the email is sent, but its answer never reaches the run. The run
waits (``KeelState = awaiting_guidance``) showing the call; ``confirm`` goes on with the
stated result, ``retry`` sends it once more with the same idempotency key (the server's
ledger answers from the first send: one email), ``abort`` and the profile's timeout end the
run halted. The turn's other call (``get_customer``) keeps its result throughout. The email
needs a human's approval first (the desk requires an approval grant for ``send_email``): each
test approves it, and the retry carries a fresh grant for the same decision.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from keel.contracts import (
    Decision,
    Resolution,
    ResolveOutcome,
    RunResult,
    RunStatus,
    StepRecord,
    names,
)
from keel.stack import Stack
from tests.helpers import keel, plain_events, start
from tests.integration.test_approvals import pending

SUBJECT = "Your return label"


@pytest.fixture(scope="module", autouse=True)
def slow_desk(stack: Stack) -> Iterator[None]:
    """The session's support desk, restarted with 1.5 s of latency per tool call."""
    saved = dict(stack.config.component_env.get("support_desk", {}))
    stack.config.component_env["support_desk"] = {**saved, "SUPPORT_DESK_LATENCY_MS": "1500"}
    stack.stop("support_desk")
    stack.start("support_desk")
    try:
        yield
    finally:
        stack.config.component_env["support_desk"] = saved
        stack.stop("support_desk")
        stack.start("support_desk")


def emails(stack: Stack) -> int:
    with sqlite3.connect(stack.config.support_desk_db) as db:
        row = db.execute("SELECT COUNT(*) FROM emails WHERE subject = ?", (SUBJECT,)).fetchone()
    return int(row[0])


async def approved(handle: WorkflowHandle[Any, Any]) -> None:
    """Approve the email (the desk sends it only with the grant of a human decision). By
    signal: the ``decide`` update would wait for the email's outcome, which is lost."""
    [request] = await pending(handle)
    assert request.tool == "send_email"
    decision = Decision(approval_id=request.approval_id, digest=request.digest,
                        decision="approve", by="alice")  # fmt: skip
    await handle.signal(names.SIGNAL_DECIDE, decision)


async def unresolved(handle: WorkflowHandle[Any, Any]) -> RunStatus:
    """The status once the run waits for a resolve (its email approved first)."""
    await approved(handle)
    for _ in range(600):
        status = await handle.query(names.QUERY_STATUS, result_type=RunStatus)
        if status.unresolved_calls:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError("the lost answer never became unresolved")


def step(result: RunResult, tool: str) -> StepRecord:
    [record] = [s for s in result.steps if s.name == tool]
    return record


async def model_inputs(client: Client, handle: WorkflowHandle[Any, Any]) -> str:
    """Every model call's input as it is in history (what the model was sent), decrypted."""
    texts = []
    for event in await plain_events(client, handle):
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == names.ACTIVITY_LLM_CHAT:
                texts += [p.data.decode() for p in attrs.input.payloads]
    return "\n".join(texts)


async def test_lost_answer_waits_then_confirm_goes_on_with_the_stated_result(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "lost_answer")
    status = await unresolved(handle)

    assert status.state == "awaiting_guidance"
    [call] = status.unresolved_calls
    assert (call.tool, call.server, call.arguments["customer_id"]) == (
        "send_email", "support_desk", "CUS-1001",
    )  # fmt: skip
    assert call.idempotency_key == f"{handle.id}:1:{call.tool_call_id}"
    assert "timed out" in call.error
    described = await handle.describe()
    assert described.search_attributes[names.SA_STATE] == ["awaiting_guidance"]
    shown = keel(stack, "status", handle.id)
    assert "unresolved send_email(" in shown.stdout and call.idempotency_key in shown.stdout

    done = keel(stack, "resolve", handle.id, "--confirm", '{"sent": true, "id": "EML-1"}',
                "--by", "alice")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"confirm: send_email ({call.idempotency_key}) in run {handle.id}"

    result: RunResult = await handle.result()
    assert result.status == "completed", result.error
    email = step(result, "send_email")
    assert (email.outcome, email.attempts) == ("ok", 1)
    assert email.detail.startswith("confirmed by alice:")
    assert step(result, "get_customer").outcome == "ok"  # the turn's other call kept its result
    assert '{\\"sent\\": true, \\"id\\": \\"EML-1\\"}' in await model_inputs(client, handle)


async def test_retry_sends_once_more_with_the_same_key(client: Client, stack: Stack) -> None:
    before = emails(stack)
    handle = await start(client, "lost_answer")
    [call] = (await unresolved(handle)).unresolved_calls
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            names.UPDATE_RESOLVE, Resolution(action="retry", idempotency_key="nope"),
            result_type=ResolveOutcome,
        )  # fmt: skip
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == ("ResolveRefused", True)
    assert "call 'nope' is not unresolved" in cause.message and "\n" not in cause.message
    await asyncio.sleep(2.0)  # the first send has finished on the server by now
    outcome = await handle.execute_update(
        names.UPDATE_RESOLVE, Resolution(action="retry", by="bob"), result_type=ResolveOutcome
    )
    assert (outcome.idempotency_key, outcome.action) == (call.idempotency_key, "retry")

    result: RunResult = await handle.result()
    assert result.status == "completed", result.error
    email = step(result, "send_email")
    assert (email.outcome, email.attempts, email.idempotency_key) == (
        "ok", 2, call.idempotency_key,
    )  # fmt: skip
    assert emails(stack) == before + 1  # sent once: the retry was answered by the ledger
    # Both sends carried a grant of the one approval, which the desk accepted.
    log = stack.log_path("support_desk").read_text().splitlines()
    accepted = [line for line in log if '"grant.accepted"' in line and call.idempotency_key in line]
    assert len(accepted) == 2
    assert f'"subject":"{SUBJECT}"' in email.detail  # the server's answer, as the model saw it


async def test_abort_ends_the_run_halted(client: Client) -> None:
    handle = await start(client, "lost_answer")
    await unresolved(handle)
    await handle.signal(
        names.SIGNAL_RESOLVE, {"action": "abort", "by": "carol", "reason": "checked"}
    )

    result: RunResult = await handle.result()
    assert (result.status, result.failure_class) == ("halted", "lost_result_aborted")
    assert "resolve abort by carol: checked" in (result.error or "")
    assert step(result, "send_email").outcome == "failed"
    assert step(result, "get_customer").outcome == "ok"
    described = await handle.describe()
    assert described.search_attributes[names.SA_FAILURE_CLASS] == ["lost_result_aborted"]


async def test_nobody_resolving_ends_the_run_halted_at_the_timeout(client: Client) -> None:
    handle = await start(client, "lost_answer_timeout")
    await approved(handle)
    result: RunResult = await handle.result()
    assert (result.status, result.failure_class) == ("halted", "lost_result_timeout")
    assert "nobody resolved it within 3s" in (result.error or "")
    assert step(result, "get_customer").outcome == "ok"
