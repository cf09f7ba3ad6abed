"""History benchmark: how history and the content store grow with a run's length.

    .venv/bin/python -m bench.history                    # 10, 100 and 1000 steps
    .venv/bin/python -m bench.history --steps 10,100 --kilobytes 20 --json out.json

Starts its own stack on free ports (under a temporary directory) with the tests' media server,
and runs profile ``history_pages`` (tests/profiles): every model step exports another page of
``--kilobytes`` of text that differs from page to page, until the run's step limit ends it.
For each run it follows the chain of continue-as-new generations and reports:

- the run's typed result (status and stop reason) and its continue-as-new count;
- history events and bytes in all (the protobuf size of every event of every generation);
- history bytes per step, early (steps 2-10) and late (the 10 steps before the last, whose
  segment also holds the run's end and its result): the marginal cost of a step, from one
  ``keel.llm.chat`` schedule to the next. Target: late <= 1.2 x early;
- content-store bytes (the local store's files: ``<home>/store``; text is stored compressed);
- (history + store) / content produced, where content produced is the tool results' bytes plus
  the task and system prompt. Target: <= 1.5;
- wall time per step.

Beside them it prints today's design before issue 13, as recorded: the numbers of the issue
(commit 287c1c1), and this bench's own run on the foundation commit 33178af, whose model calls
still carried the whole conversation and which had no continue-as-new.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from keel.contracts import AgentInput, LimitOverrides, RunResult, names
from keel.stack import Stack, StackConfig
from tests.helpers import REPO, TEST_PROFILES, connect_stack, run_chain

MEDIA_SERVER = REPO / "tests" / "integration" / "media_server.py"
PROFILE = "history_pages"
TASK = "Page through the sales ledger, one page per step."
SYSTEM_PROMPT = "You page through the sales ledger."

# Today's design before issue 13 (commit 287c1c1), as measured for the issue.
RECORDED_BASELINE = {
    "design": "before issue 13 (287c1c1): whole conversation in every model call",
    "20 KB results": "terminated by Temporal at step 70: 853 events, 53.5 MB of history",
    "300 tiny steps": "3,631 events, 13.3 MB of history (quadratic growth)",
    "3-step demo run": "131 KB of history",
    "this bench on 33178af (same conversation handling), 20 KB pages": (
        "10 steps 1.20 MB, 40 steps 17.25 MB of history; KB/step late/early 5.81 at 40 steps;"
        " (history+store)/content 21.06 at 40 steps"
    ),
}


@dataclass
class RunReport:
    steps: int
    status: str
    stop_reason: str | None
    model_calls: int
    continued: int
    events: int
    history_bytes: int
    bytes_per_step_early: float
    bytes_per_step_late: float
    store_bytes: int
    content_bytes: int
    seconds: float
    generations: list[dict[str, int]] = field(default_factory=list)

    @property
    def late_over_early(self) -> float:
        return self.bytes_per_step_late / max(self.bytes_per_step_early, 1.0)

    @property
    def overhead(self) -> float:
        return (self.history_bytes + self.store_bytes) / max(self.content_bytes, 1)


def bench_stack(home: Path) -> Stack:
    media = shlex.join([sys.executable, str(MEDIA_SERVER), "--calls", str(home / "media.log")])
    config = StackConfig.isolated(
        home,
        extra_worker_env={
            "KEEL_PROFILES_PATH": os.pathsep.join([str(TEST_PROFILES), str(REPO / "profiles")]),
            "KEEL_MCP_MEDIA": f"stdio:{media}",
        },
    )
    return Stack(config)


def step_bytes(chain: list[list[Any]]) -> list[int]:
    """History bytes of each model step: from one chat schedule to the next, in run order."""
    per_step: list[int] = []
    for events in chain:
        current: int | None = None
        for event in events:
            attributes = event.activity_task_scheduled_event_attributes
            if (
                event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                and attributes.activity_type.name == names.ACTIVITY_LLM_CHAT
            ):
                if current is not None:
                    per_step.append(current)
                current = 0
            if current is not None:
                current += event.ByteSize()
        if current is not None:
            per_step.append(current)
    return per_step


def mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def store_size(home: Path) -> int:
    root = home / "store"
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


async def one_run(stack: Stack, client: Client, steps: int, kilobytes: int) -> RunReport:
    workflow_id = f"bench-history-{steps}-{time.time_ns()}"
    agent_input = AgentInput(
        profile=PROFILE, task=TASK, limits=LimitOverrides(max_steps=steps, max_tool_calls=steps)
    )
    before = store_size(stack.config.home)
    started = time.monotonic()
    handle = await client.start_workflow(
        names.WORKFLOW_TYPE, agent_input, id=workflow_id, task_queue=names.TASK_QUEUE,
        result_type=RunResult,
    )  # fmt: skip
    result = await handle.result()
    seconds = time.monotonic() - started
    chain = await run_chain(client, workflow_id, handle.first_execution_run_id or "")
    per_step = step_bytes(chain)
    produced = steps * kilobytes * 1024 + len(TASK.encode()) + len(SYSTEM_PROMPT.encode())
    return RunReport(
        steps=steps,
        status=result.status,
        stop_reason=result.stop_reason,
        model_calls=result.model_calls,
        continued=len(chain) - 1,
        events=sum(len(events) for events in chain),
        history_bytes=sum(event.ByteSize() for events in chain for event in events),
        bytes_per_step_early=mean(per_step[1:10]),
        bytes_per_step_late=mean(per_step[-11:-1]),  # the last holds the run's end
        store_bytes=store_size(stack.config.home) - before,
        content_bytes=produced,
        seconds=seconds,
        generations=[
            {"events": len(events), "bytes": sum(e.ByteSize() for e in events)} for events in chain
        ],
    )


def table(reports: list[RunReport]) -> str:
    rows: list[tuple[str, ...]] = [
        ("steps", *(str(r.steps) for r in reports)),
        ("result", *(f"{r.status}/{r.stop_reason or '-'}" for r in reports)),
        ("model calls", *(str(r.model_calls) for r in reports)),
        ("continue-as-new", *(str(r.continued) for r in reports)),
        ("history events", *(f"{r.events:,}" for r in reports)),
        ("history MB", *(f"{r.history_bytes / 1e6:.2f}" for r in reports)),
        ("history events/step", *(f"{r.events / r.steps:.1f}" for r in reports)),
        ("history KB/step, steps 2-10", *(f"{r.bytes_per_step_early / 1e3:.1f}" for r in reports)),
        ("history KB/step, last 10", *(f"{r.bytes_per_step_late / 1e3:.1f}" for r in reports)),
        ("late / early (target <= 1.2)", *(f"{r.late_over_early:.2f}" for r in reports)),
        ("store MB", *(f"{r.store_bytes / 1e6:.2f}" for r in reports)),
        ("content produced MB", *(f"{r.content_bytes / 1e6:.2f}" for r in reports)),
        ("(history+store)/content (<= 1.5)", *(f"{r.overhead:.2f}" for r in reports)),
        ("wall ms/step", *(f"{r.seconds * 1000 / r.steps:.0f}" for r in reports)),
    ]
    width = max(len(row[0]) for row in rows)
    lines = ["  ".join([f"{row[0]:<{width}}", *(f"{v:>14}" for v in row[1:])]) for row in rows]
    lines.append("today's design (recorded):")
    lines.extend(f"  {key}: {value}" for key, value in RECORDED_BASELINE.items())
    return "\n".join(lines)


async def main(steps: list[int], kilobytes: int, json_path: Path | None) -> int:
    stack = bench_stack(Path(tempfile.mkdtemp(prefix="keel-history-")))
    stack.up()
    try:
        client = await connect_stack(stack)
        reports = [await one_run(stack, client, n, kilobytes) for n in steps]
    finally:
        stack.down()
    print(table(reports))
    if json_path is not None:
        data = [asdict(r) | {"late_over_early": r.late_over_early, "overhead": r.overhead}
                for r in reports]  # fmt: skip
        json_path.write_text(json.dumps({"runs": data, "baseline": RECORDED_BASELINE}, indent=2))
    completed = all(r.model_calls == r.steps and r.stop_reason == "step_limit" for r in reports)
    return 0 if completed else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10,100,1000", help="comma-separated run lengths")
    parser.add_argument("--kilobytes", type=int, default=20, help="size of each tool result")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    code = asyncio.run(main([int(s) for s in args.steps.split(",")], args.kilobytes, args.json))
    sys.stdout.flush()
    os._exit(code)  # skip interpreter teardown (known Temporal SDK exit crash)
