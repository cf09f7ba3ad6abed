"""``PipelineStop``: a stop condition that ends a pipeline run ``halted`` (a limit, the history
budget, an approval nobody answered after escalation)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.agent.state import Stop


class PipelineStop(Exception):
    """Raised by a pipeline step; the pipeline workflow ends the run halted with ``stop``."""

    def __init__(self, stop: Stop) -> None:
        super().__init__(stop.message)
        self.stop = stop
