"""Model routing: which tier serves the next model step, and why (``[routing]``).

Workflow code (deterministic). ``Router.next`` names the tier of the next step; the loop tells
it how each step went (``answered``, ``turn_done``) so it can escalate to a stronger tier and
step back down. A profile without ``[routing]`` gets ``None`` for every step: ``[model]``
serves it, exactly as before routing existed.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import ChatResponse, Profile
    from workflows.agent.state import Ledger


@dataclass(frozen=True)
class Route:
    """The tier serving a step (``None``: the profile's ``[model]``) and why."""

    tier: str | None
    why: str


class Router:
    """Routes one run's model steps (see the module docstring)."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    def next(self, step: int) -> Route | None:
        """The route of model step ``step`` (1-based); None without ``[routing]``."""
        return None

    def answered(self, response: ChatResponse) -> None:
        """The model answered step ``ledger.model_calls`` (its confidence may escalate)."""

    def turn_done(self, ledger: Ledger, step: int) -> None:
        """The tool turn of ``step`` ran (its refusals and tool errors may escalate)."""
