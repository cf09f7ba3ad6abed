"""Failure classes: every run that does not complete carries exactly one.

The taxonomy is documented in docs/operations.md; later issues extend it (limits, validation,
approvals). This module maps what Temporal reports about a failed activity to a class and a
readable message, so the workflow never ends with a bare stack trace. ``RunFailed`` is how
workflow code ends a run that has started: the loop turns it into a typed ``failed`` result.
"""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

from keel.contracts.failure_classes import FailureClass as FailureClass

# The taxonomy itself is a contract (profiles name classes: [fallback] on).


class RunFailed(Exception):
    """Internal control flow: ends the run with a typed ``failed`` result."""

    def __init__(self, failure_class: FailureClass, message: str) -> None:
        super().__init__(message)
        self.failure_class = failure_class
        self.message = message


class RunHalted(RunFailed):
    """Ends the run ``halted`` (not ``failed``): a human or a bound stopped it on purpose, e.g.
    a lost write answer aborted or left unresolved (workflows/tools/lost.py)."""


_BY_ERROR_TYPE: dict[str, FailureClass] = {
    "ConfigError": "config_error",
    "ProfileError": "config_error",
    "LLMRequestRejected": "model_error",
    "LLMBadResponse": "model_error",
    "LLMBadUsage": "model_error",
    # A result over the payload limit: Keel's own check (activities/payloads.py), or Temporal's
    # when the namespace's limit is lower than Keel assumed; never worth a retry.
    "PayloadTooLarge": "payload_too_large",
    "PayloadsTooLarge": "payload_too_large",
    # Stored conversation content that is gone (past the store's retention, another store)
    # or altered (activities/transcripts.py): the same store would answer the same.
    "ContentMissing": "content_missing",
    "StoreUnavailable": "upstream_unavailable",
    "LLMHttpError": "upstream_unavailable",
    "LLMTransportError": "upstream_unavailable",
    "UpstreamUnavailable": "upstream_unavailable",
    "MCPProtocolError": "upstream_unavailable",
    "MCPServerUnavailable": "upstream_unavailable",
    # An MCP server refused the worker's access token (401) or its scopes (403): a retry
    # would be refused the same (activities/mcp_auth.py).
    "MCPAccessDenied": "access_denied",
    "CircuitOpen": "upstream_unavailable",
    # The worker would not sign an approval grant for arguments nobody approved: a Keel bug.
    "GrantRefused": "internal",
    # A spend budget across runs is exhausted (activities/spend.py): the run halts.
    "SpendLimit": "spend_limit",
}


def classify(error: BaseException, what: str) -> tuple[FailureClass, str]:
    """(failure class, message) for an exception raised by ``execute_activity``."""
    cause = error.cause if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError):
        failure = _BY_ERROR_TYPE.get(cause.type or "", "upstream_unavailable")
        return failure, f"{what}: {cause.message}"
    if isinstance(cause, TimeoutError):
        return (
            "upstream_unavailable",
            f"{what}: timed out ({cause.type.name if cause.type else 'timeout'})",
        )
    return "internal", f"{what}: {cause}"
