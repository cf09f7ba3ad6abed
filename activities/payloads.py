"""Temporal's payload limit, checked by the worker before an activity returns its result.

Temporal refuses an activity result above the namespace's blob-size limit (2 MiB by default,
``limit.blobSize.error``) with a *retryable* ``PayloadsTooLarge`` failure: the activity runs
again — a tool's side effect repeated, a model answer paid twice — and fails the same way.
Keel checks sizes itself first: a tool result is cut to its server's ``max_result_bytes``
(activities/tool_results.py) and a model answer over ``max_response_bytes`` fails at once
with a non-retryable ``PayloadTooLarge`` (failure class ``payload_too_large``).
"""

from __future__ import annotations

import json
from typing import Any

from temporalio.exceptions import ApplicationError

PAYLOAD_TOO_LARGE = "PayloadTooLarge"
"""Keel's error type for a result over a limit (Temporal's own is ``PayloadsTooLarge``)."""

TEMPORAL_PAYLOAD_ERROR = "PayloadsTooLarge"
"""The error type Temporal's SDK reports when a result is over the namespace's limit."""

SAFE_PAYLOAD_BYTES = 2_000_000
"""What an activity result may weigh: below Temporal's default 2 MiB (2,097,152 bytes) with
room for the payload envelope."""


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (how the pydantic data converter sends it)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def too_large(message: str, *details: Any) -> ApplicationError:
    """The non-retryable failure of a result that cannot be returned: a retry would produce
    it again (and repeat whatever produced it)."""
    return ApplicationError(message, *details, type=PAYLOAD_TOO_LARGE, non_retryable=True)
