"""The digest of exactly what an approval lets run: one definition for the workflow, the worker
that mints approval grants and the MCP servers that check them.

Standard library only (like :mod:`keel.contracts.names`), so a tool server can import it
without the rest of Keel.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def approval_digest(server: str, tool: str, arguments: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of what an approval would let run.

    Canonical: keys sorted, no whitespace, UTF-8 (a NaN, which the JSON parser of a model's
    arguments accepts, is written ``NaN`` rather than refused: the workflow must not raise
    here). The workflow computes it when it opens a request; a decision names it, so it
    decides exactly what the approver read; the worker puts it in the approval grant and the
    server recomputes it from the arguments it received. Copy it from the request rather than
    recompute it with another encoder: other JSON encoders write numbers differently.
    """
    canonical = json.dumps(
        {"server": server, "tool": tool, "arguments": arguments},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )  # fmt: skip
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
