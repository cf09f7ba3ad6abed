"""Replay-safe structured log events from workflow code.

``emit("approval.decision", step=3, approval_id=...)`` logs through ``workflow.logger``: the
SDK drops the call while the workflow replays history, so a replay (worker restart, cache
eviction) never logs an event twice, and adds the workflow id, run id, type and task queue.
keel/logs.py lifts the fields from the record's ``keel`` extra into the JSON line.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio import workflow


def emit(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with ``fields`` (JSON-serialisable values) from workflow code."""
    workflow.logger.log(level, event, extra={"keel": fields})
