"""Which workflow type ``keel run`` / ``keel.client.start_run`` starts for a profile."""

from __future__ import annotations

from keel.client import workflow_type
from keel.runtime.config import PROJECT_ROOT, Settings


def test_a_pipeline_profile_starts_its_pipeline_and_any_other_the_agent() -> None:
    settings = Settings.from_env({"KEEL_PROFILES_PATH": str(PROJECT_ROOT / "profiles")})
    assert workflow_type("triage", settings) == "keel.pipeline.refund_triage"
    assert workflow_type("support", settings) == "AgentWorkflow"
    # a profile only the worker has: an agent run (which refuses a pipeline's profile)
    assert workflow_type("only_on_the_worker", settings) == "AgentWorkflow"
