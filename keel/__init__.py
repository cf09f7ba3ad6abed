"""Keel: durable AI agents on Temporal. This module is the public API for Python users.

``import keel`` (or ``from keel import start_run, AgentInput``) is all a program that starts,
follows and decides on agent runs needs: the client functions, the types that cross the wire,
the errors and the public names. Everything else (``keel.cli``, ``keel.stack``, ...) is
Keel's own machinery and may change.

The names resolve lazily (PEP 562): importing ``keel`` loads nothing but this file. That
matters because every ``import keel.<submodule>`` runs it first, and the MCP servers import
``keel.contracts.names`` in processes without temporalio; an eager import here would drag
the Temporal SDK, httpx and pydantic into each of them. ``from keel import connect`` pays
for ``keel.client`` then, and only then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy and IDEs see; at run time __getattr__ below supplies these
    from keel.approvals import decide, list_pending, pending_request
    from keel.client import build_input, connect, follow, query_status, start_run
    from keel.contracts.approvals import (
        ApprovalRequest,
        Decision,
        DecisionOutcome,
        DecisionRecord,
    )
    from keel.contracts.errors import ConfigError, InputError, KeelError, ProfileError
    from keel.contracts.llm import Usage
    from keel.contracts.names import TASK_QUEUE, WORKFLOW_TYPE
    from keel.contracts.progress import ProgressEvent
    from keel.contracts.result import RunResult, RunStatus, StepRecord
    from keel.contracts.run import AgentInput, LimitOverrides, Principal, RunOutcome, RunState
    from keel.runtime.codec import data_converter
    from keel.runtime.config import Settings

# Public name -> the module that defines it. A name must not equal a submodule of ``keel``
# (``watch``, ``report``, ...): importing that submodule would overwrite the attribute.
_EXPORTS: dict[str, str] = {
    # client: connect, start, follow, ask
    "connect": "keel.client",
    "build_input": "keel.client",
    "start_run": "keel.client",
    "follow": "keel.client",
    "query_status": "keel.client",
    # approvals: what waits for a human, and deciding it
    "list_pending": "keel.approvals",
    "decide": "keel.approvals",
    "pending_request": "keel.approvals",
    # a run's input
    "AgentInput": "keel.contracts.run",
    "Principal": "keel.contracts.run",
    "LimitOverrides": "keel.contracts.run",
    "RunState": "keel.contracts.run",
    "RunOutcome": "keel.contracts.run",
    # what a run reports
    "RunResult": "keel.contracts.result",
    "RunStatus": "keel.contracts.result",
    "StepRecord": "keel.contracts.result",
    "Usage": "keel.contracts.llm",
    "ProgressEvent": "keel.contracts.progress",
    # approvals' payloads
    "ApprovalRequest": "keel.contracts.approvals",
    "Decision": "keel.contracts.approvals",
    "DecisionOutcome": "keel.contracts.approvals",
    "DecisionRecord": "keel.contracts.approvals",
    # errors
    "KeelError": "keel.contracts.errors",
    "ConfigError": "keel.contracts.errors",
    "InputError": "keel.contracts.errors",
    "ProfileError": "keel.contracts.errors",
    # configuration and public names
    "Settings": "keel.runtime.config",
    # the data converter of a Temporal client or worker of your own (encrypted payloads)
    "data_converter": "keel.runtime.codec",
    "WORKFLOW_TYPE": "keel.contracts.names",
    "TASK_QUEUE": "keel.contracts.names",
}

__all__ = [
    "TASK_QUEUE",
    "WORKFLOW_TYPE",
    "AgentInput",
    "ApprovalRequest",
    "ConfigError",
    "Decision",
    "DecisionOutcome",
    "DecisionRecord",
    "InputError",
    "KeelError",
    "LimitOverrides",
    "Principal",
    "ProfileError",
    "ProgressEvent",
    "RunOutcome",
    "RunResult",
    "RunState",
    "RunStatus",
    "Settings",
    "StepRecord",
    "Usage",
    "build_input",
    "connect",
    "data_converter",
    "decide",
    "follow",
    "list_pending",
    "pending_request",
    "query_status",
    "start_run",
]


if not TYPE_CHECKING:  # hidden from mypy, or it would accept any ``keel.<typo>`` as Any

    def __getattr__(name: str) -> Any:
        """Import the defining module on first use and remember the value in this module."""
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module 'keel' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        """The public names too, although most are not loaded yet (completion, ``help``)."""
        return sorted({*globals(), *__all__})
