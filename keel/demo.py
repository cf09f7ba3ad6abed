"""The demo behind ``make demo``: a customer asks for a refund, a human approves it.

Starts whatever part of the local stack is not running, runs the ``refunds`` profile against
the simulated LLM and the real MCP servers: the agent looks up the customer, the order and the
refund policy in parallel, reads the policy, and proposes a refund and a confirmation email.
Both are irreversible, so the run waits; the demo shows the approval requests, approves them as
a human would (printing the equivalent CLI commands), and checks that the refund and the email
happened exactly once, printing the run's live progress all along (what `keel watch` shows).
Then it stops only what it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

from temporalio.client import WorkflowHandle

from keel.client import build_input, connect, query_status, start_run
from keel.contracts import ApprovalRequest, Decision, DecisionOutcome, ProgressEvent, RunResult
from keel.render import progress_line, result_text, terminal_safe
from keel.runtime.config import Settings
from keel.stack import Stack
from keel.watch import watch

DEMO_PROFILE = "refunds"
DEMO_TASK = (
    "Hi, this is Maria Lopez (maria.lopez@example.com). My order ORD-1042 arrived with a torn"
    " sole. Can I get my money back, and how long will it take?"
)


def approval(request: ApprovalRequest) -> Decision:
    """What the demo's supervisor decides: exactly this request (its id and digest)."""
    return Decision(
        approval_id=request.approval_id, digest=request.digest, decision="approve",
        by="demo-supervisor", roles=["supervisor"],
    )  # fmt: skip


def grant_uses(db_path: Path, run: str) -> dict[str, str]:
    """The approval grants the support desk accepted for ``run``: tool → approver (its ledger's
    ``approval_grant_uses`` table, mcp_servers/shared/ledger/grant_uses.py)."""
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        rows = db.execute(
            "SELECT tool, approver FROM approval_grant_uses WHERE run = ? ORDER BY tool", (run,)
        ).fetchall()
    return {str(tool): str(approver) for tool, approver in rows}


def show_grants(grants: dict[str, str], server_url: str) -> None:
    for tool, approver in grants.items():
        print(f"  {tool} ran with an approval grant the desk verified (approved by {approver})")
    print(f"  every call carried an access token; an anonymous one gets 401: curl -i {server_url}")


def effects(db_path: Path) -> tuple[int, int]:
    """Refunds of ORD-1042 and emails to Maria in the support desk's database."""
    with sqlite3.connect(db_path) as db:
        refunds = db.execute("SELECT COUNT(*) FROM refunds WHERE order_id = 'ORD-1042'").fetchone()
        emails = db.execute("SELECT COUNT(*) FROM emails WHERE customer_id = 'CUS-1001'").fetchone()
    return int(refunds[0]), int(emails[0])


async def wait_for_approvals(
    handle: WorkflowHandle[object, RunResult],
    events: list[ProgressEvent],
    watching: asyncio.Future[RunResult],
) -> list[ApprovalRequest]:
    """Wait until the run waits for a human (or ends) and its progress shows every request."""
    while not watching.done():
        status = await query_status(handle)
        if status.state == "awaiting_approval":
            requests: list[ApprovalRequest] = await handle.query(
                "pending_approvals", result_type=list[ApprovalRequest]
            )
            shown = {e.data.get("approval_id") for e in events if e.kind == "approval.requested"}
            if requests and all(r.approval_id in shown for r in requests):
                return requests
        elif status.state not in ("running", "awaiting_guidance"):
            return []
        await asyncio.sleep(0.2)
    return []


def show_request(request: ApprovalRequest) -> None:
    print(f"  ▸ {request.approval_id}: {request.tool} {json.dumps(request.arguments)}")
    print(f"    digest: {request.digest} (what an approval of it lets run)")
    print(f"    class: {request.reversibility} · for: {request.principal.id} ·"
          f" approvers: {', '.join(request.approver_roles) or 'anyone'}")  # fmt: skip
    if request.reason:
        print(terminal_safe(f"    agent's reason: {request.reason}"))
    order = request.context.get("order")
    if isinstance(order, dict):
        print(f"    acts on: {order.get('order_id')} paid {order.get('paid')}"
              f" refundable {order.get('refundable')} ({order.get('status')})")  # fmt: skip


async def approve(
    handle: WorkflowHandle[object, RunResult], requests: list[ApprovalRequest], codec: str
) -> None:
    """Show the requests, approve each as the supervisor, print the equivalent commands."""
    print(f"\nThe run waits for a human: {len(requests)} irreversible action(s) proposed.")
    for request in requests:
        show_request(request)
    print("\nA supervisor approves them. The same from a terminal would be:")
    for request in requests:
        command = f"keel approve {handle.id} {request.approval_id} --digest {request.digest}"
        print(f"  {command} --by demo-supervisor --role supervisor")
    payload = approval(requests[0])
    print(
        f"  temporal workflow update execute --workflow-id {handle.id} --name decide"
        f" --codec-endpoint {codec} --input '{payload.model_dump_json(exclude_none=True)}'"
    )
    for request in requests:
        decision = approval(request)
        outcome = await handle.execute_update("decide", decision, result_type=DecisionOutcome)
        print(f"  {request.approval_id}: {outcome.status}")
    print()


def show_temporal_cli(raw: dict[str, object], codec: str) -> None:
    """The same run driven by the Temporal CLI alone: Keel's workflow needs no Keel client.
    Payloads are encrypted: the CLI reads and writes them through the codec server."""
    print("\nThe same run with the Temporal CLI (while `make up` runs):")
    print(f"  export TEMPORAL_CODEC_ENDPOINT={codec}   # payloads are encrypted")
    print(
        "  temporal workflow start --task-queue agents --type AgentWorkflow"
        f" --workflow-id my-run --input '{json.dumps(raw)}'"
    )
    print("  temporal workflow query --workflow-id my-run --name pending_approvals")
    print("  temporal workflow query --workflow-id my-run --name status")
    print("  temporal workflow result --workflow-id my-run")


async def run_demo(stack: Stack) -> int:
    """Run the demo scenario on ``stack``; return a process exit code."""
    config = stack.config
    settings = Settings.from_env({**config.client_env(), "KEEL_LLM_BASE_URL": config.llm_base_url})
    raw: dict[str, object] = {
        "profile": DEMO_PROFILE,
        "task": DEMO_TASK,
        "principal": {"id": "support-agent-7", "roles": ["agent"]},
    }
    agent_input = build_input(raw, settings)
    before = effects(config.support_desk_db)
    client = await connect(settings)
    handle = await start_run(client, settings, agent_input)
    print(f"customer: {DEMO_TASK}\n")
    print(f"started workflow {handle.id} (Temporal UI: http://{config.host}:{config.ui_port})")
    print(f"progress (the same from a terminal: keel watch {handle.id}):")

    # The run's live progress, printed as the workflow publishes it (its workflow stream).
    events: list[ProgressEvent] = []

    def show(event: ProgressEvent) -> None:
        events.append(event)
        print("  " + progress_line(event))

    watching = asyncio.ensure_future(watch(client, handle.id, show))
    requests = await wait_for_approvals(handle, events, watching)
    if requests:
        await approve(handle, requests, config.codec_url)
    result = await watching
    print()
    print(result_text(result))
    refunds, emails = (a - b for a, b in zip(effects(config.support_desk_db), before, strict=True))
    print(f"\nsupport desk: {refunds} refund of ORD-1042 and {emails} email to Maria from this run")
    grants = grant_uses(config.support_desk_db, handle.id)
    show_grants(grants, config.mcp_url("support_desk"))
    show_temporal_cli(raw, config.codec_url)
    granted = set(grants) == {"refund_order", "send_email"}
    ok = result.status == "completed" and (refunds, emails) == (1, 1) and granted
    return 0 if ok else 1
