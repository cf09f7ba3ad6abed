"""The agent run: ``AgentWorkflow``, its state, its loop, one model step, one tool turn."""

from workflows.agent.workflow import AgentWorkflow

__all__ = ["AgentWorkflow"]
