"""What a pipeline's code calls: deterministic tool steps and decision nodes.

Workflow code. A tool step is one call through the agent loop's own tool turn
(workflows/agent/turn.py): the tool-call budget, the schema, semantic and authorization checks
of the profile, approvals for calls that need a human, the idempotency key, the step record,
progress and spans — a pipeline's refund waits for approval exactly as the agent's does. A
decision node is workflows/pipeline/decide.py. Plain Python between the steps is the
pipeline's deterministic logic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import AgentInput, Profile, StepRecord, ToolCall
    from workflows.agent.state import RunContext
    from workflows.agent.turn import run_tool_turn
    from workflows.pipeline.decide import Answer, Decided, DecisionMaker, DecisionNode
    from workflows.pipeline.stop import PipelineStop


@dataclass
class ToolOutcome:
    """One tool step: what the tool returned (``data``: its JSON result, parsed) or why not."""

    tool: str
    text: str
    record: StepRecord | None

    @property
    def outcome(self) -> str:
        """ok, tool_error, invalid, refused, rejected (by a human) or failed."""
        return self.record.outcome if self.record is not None else "failed"

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def data(self) -> Any:
        try:
            return json.loads(self.text)
        except json.JSONDecodeError:
            return self.text

    def field(self, name: str, default: Any = None) -> Any:
        data = self.data
        return data.get(name, default) if isinstance(data, dict) else default


class Steps:
    """The steps of one pipeline run (``input`` is the run's ``AgentInput``)."""

    def __init__(
        self, agent_input: AgentInput, profile: Profile, ctx: RunContext, on_event: Any
    ) -> None:
        self.input = agent_input
        self.profile = profile
        self.ctx = ctx
        self._decisions = DecisionMaker(profile, ctx, on_event)
        self._calls = 0

    @property
    def task(self) -> str:
        return self.input.task

    async def tool(
        self, name: str, arguments: dict[str, Any], *, why: str | None = None
    ) -> ToolOutcome:
        """Call ``name`` with ``arguments``; ``why`` is shown to an approver."""
        self._calls += 1
        call = ToolCall(id=f"step-{self._calls}-{name}", name=name, arguments=json.dumps(arguments))
        self.ctx.state.last_event = f"pipeline step {self._calls}: {name}"
        messages, stop = await run_tool_turn(self.ctx, [call], why)
        if stop is not None:
            raise PipelineStop(stop)
        record = next(
            (r for r in reversed(self.ctx.ledger.steps) if r.tool_call_id == call.id), None
        )
        return ToolOutcome(name, messages[0].content or "", record)

    async def decide(
        self, node: DecisionNode[Answer], question: str, facts: dict[str, Any]
    ) -> Decided[Answer]:
        """Ask ``node``'s question about ``facts`` (see workflows/pipeline/decide.py)."""
        self.ctx.state.last_event = f"decision {node.name}"
        return await self._decisions.decide(node, question, facts)
