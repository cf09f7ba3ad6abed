"""The demo behind ``make demo``: a customer asks about an order and a refund.

Starts whatever part of the local stack is not running, runs the ``support`` profile against
the simulated LLM and the real MCP servers, prints each step and the final answer, shows the
equivalent Temporal CLI commands, then stops only what it started.
"""

from __future__ import annotations

import json

from keel.client import build_input, connect, follow, start_run
from keel.config import Settings
from keel.models import RunStatus
from keel.render import result_text, status_line
from keel.stack import Stack

DEMO_TASK = (
    "Hi, this is Maria Lopez (maria.lopez@example.com). My order ORD-1042 arrived with a torn"
    " sole. Can I get my money back, and how long will it take?"
)


async def run_demo(stack: Stack) -> int:
    """Run the demo scenario on ``stack``; return a process exit code."""
    config = stack.config
    settings = Settings.from_env(
        {"TEMPORAL_ADDRESS": config.temporal_address, "KEEL_LLM_BASE_URL": config.llm_base_url}
    )
    raw: dict[str, object] = {
        "profile": "support",
        "task": DEMO_TASK,
        "principal": {"id": "demo", "roles": ["agent"]},
    }
    agent_input = build_input(raw, settings)
    client = await connect(settings)
    handle = await start_run(client, settings, agent_input)
    print(f"customer: {DEMO_TASK}\n")
    print(f"started workflow {handle.id} (Temporal UI: http://{config.host}:{config.ui_port})")

    def on_event(status: RunStatus) -> None:
        print("  " + status_line(status))

    result = await follow(handle, on_event)
    print()
    print(result_text(result))
    print("\nThe same with the Temporal CLI (while `make up` runs):")
    payload = json.dumps(raw)
    print(
        f"  temporal workflow start --task-queue agents --type AgentWorkflow"
        f" --workflow-id my-run --input '{payload}'"
    )
    print("  temporal workflow query --workflow-id my-run --name status")
    print("  temporal workflow result --workflow-id my-run")
    return 0 if result.status == "completed" else 1
