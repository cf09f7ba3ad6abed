"""Failure classes: every run that does not complete carries exactly one (docs/operations.md,
"Run results and failure classes"). workflows/failures.py maps what Temporal reports to them;
a profile's ``[fallback] on`` names them."""

from __future__ import annotations

from typing import Literal, get_args

FailureClass = Literal[
    "step_limit",
    "tool_call_limit",
    "token_budget",
    "cost_budget",
    "spend_limit",
    "wall_clock",
    "history_limit",
    "no_progress",
    "tool_hallucination",
    "schema_violation",
    "semantic_violation",
    "unauthorized",
    "access_denied",
    "approval_timeout",
    "lost_result_aborted",
    "lost_result_timeout",
    "config_error",
    "model_error",
    "payload_too_large",
    "content_missing",
    "upstream_unavailable",
    "tool_catalog_error",
    "decision_invalid",
    "cancelled",
    "internal",
]

RUN_FAILURE_CLASSES: tuple[str, ...] = tuple(c for c in get_args(FailureClass) if c != "cancelled")
"""Every class a run that started can end with: a cancelled run ends without a result."""
