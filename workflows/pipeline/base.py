"""``PipelineWorkflow``: a hybrid pipeline as a Temporal workflow — deterministic steps and
decision nodes in code, on everything the agent loop has.

A pipeline is a subclass of ``AgentWorkflow`` that replaces the agent loop (``_loop``) with its
own ``pipeline`` method, so it takes the same ``AgentInput`` (the profile names the model and
its tiers, the MCP servers, the tool policies, limits and approvals), returns the same
``RunResult`` (with ``decisions``), and has the same signals, queries and updates: ``keel
status``, ``keel watch``, ``keel approvals``/``approve``, the wall-clock timer, the history
budget's watchdog, the step records and the report work unchanged. A subclass names its
workflow type ``keel.pipeline.<name>`` and re-declares ``run`` (the SDK requires the run method
on the class itself).

Not carried over: a tripped limit always halts a pipeline (``[escalation] on_limit =
"escalate"`` is the agent loop's), and a pipeline does not continue as new (it is short).
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import AgentInput, Limits, Profile, RunOutcome, RunResult, names
    from workflows.agent.continuation import Lineage
    from workflows.agent.state import RunContext, Stop
    from workflows.agent.workflow import AgentWorkflow
    from workflows.pipeline.steps import Steps
    from workflows.pipeline.stop import PipelineStop

PIPELINE_PREFIX = names.PIPELINE_PREFIX


@dataclass
class PipelineEnd:
    """How a pipeline ends: the answer for the customer or caller, and the run's status."""

    answer: str
    status: RunOutcome = "completed"
    stop: Stop | None = None


class PipelineWorkflow(AgentWorkflow):
    """Base of hybrid pipelines (see the module docstring); override :meth:`pipeline`."""

    _input: AgentInput | None = None

    async def pipeline(self, steps: Steps) -> PipelineEnd:
        raise NotImplementedError

    async def _context(
        self, lineage: Lineage, agent_input: AgentInput, limits: Limits
    ) -> RunContext:
        self._input = agent_input
        return await super()._context(lineage, agent_input, limits)

    async def _loop(self, profile: Profile, ctx: RunContext) -> RunResult:
        assert self._input is not None, "the run's context is built before its loop"
        steps = Steps(self._input, profile, ctx, self._set_last_event)
        try:
            end = await self.pipeline(steps)
        except PipelineStop as halted:
            stop = halted.stop
            self._reporter.stop(
                ctx.ledger.model_calls, stop.reason, stop.failure_class, stop.message, "halt"
            )
            return self._outcomes.finish("halted", stop=stop)
        return self._outcomes.finish(end.status, final_answer=end.answer, stop=end.stop)
