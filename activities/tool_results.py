"""Cutting a tool result to its server's ``max_result_bytes`` on the worker, before it is returned.

A tool result goes to the model and into the workflow's history (and every later model request
carries it), so an oversized one would fail the activity on Temporal's payload limit after the
tool has run — and the retry would run it again. The worker's MCP interceptor
(activities/mcp.py) cuts it here instead, once, on the attempt that ran the tool:

- text blocks are kept in order up to the limit; the block that crosses it is cut at a UTF-8
  boundary and the rest dropped;
- images, audio and binary resources that do not fit are replaced by a text marker naming
  their type and size; embedded text resources are cut like text;
- ``structured_content`` over the limit is dropped (the text blocks carry the same facts, cut;
  when there are none, its JSON becomes a cut text block);
- a final text block says how much was cut: ``[tool result cut: showing 65,536 of 1,500,123
  bytes …]``. The full content is not kept yet (a later content store will keep it).

Works on the JSON form of ``CallToolResult`` that temporalio-mcp returns (snake_case keys).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from keel.contracts import ServerSettings, names
from keel.contracts.sizes import human_size

DEFAULT_MAX_RESULT_BYTES: int = ServerSettings.model_fields["max_result_bytes"].default
"""The cut when a request does not say (a workflow from before the setting existed)."""


@dataclass
class _Budget:
    """Bytes left for the model, and what the cut removed."""

    left: int
    total: int = 0
    cut: int = 0

    def take_text(self, text: str) -> str:
        size = len(text.encode())
        self.total += size
        if size <= self.left:
            self.left -= size
            return text
        kept = text.encode()[: self.left].decode("utf-8", "ignore")
        self.cut += size - len(kept.encode())
        self.left = 0
        return kept

    def take_binary(self, size: int) -> bool:
        self.total += size
        if size <= self.left:
            self.left -= size
            return True
        self.cut += size
        return False


def binary_size(data: str) -> int:
    """Bytes of base64 ``data`` once decoded (its length when it is not valid base64)."""
    try:
        return len(base64.b64decode(data, validate=True))
    except ValueError:
        return len(data)


def _marker_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _cut_block(block: dict[str, Any], budget: _Budget) -> dict[str, Any] | None:
    """The block as far as it fits (None: dropped), counting what is cut."""
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        text = budget.take_text(block["text"])
        return {**block, "text": text} if text else None
    if kind in ("image", "audio") and isinstance(block.get("data"), str):
        if budget.take_binary(len(block["data"])):
            return block
        mime = block.get("mime_type") or kind
        return _marker_block(f"[{mime}, {human_size(binary_size(block['data']))}: over the"
                             " tool-result limit, not shown]")  # fmt: skip
    resource = block.get("resource") if kind == "resource" else None
    if isinstance(resource, dict) and isinstance(resource.get("text"), str):
        text = budget.take_text(resource["text"])
        return {**block, "resource": {**resource, "text": text}}
    if isinstance(resource, dict) and isinstance(resource.get("blob"), str):
        if budget.take_binary(len(resource["blob"])):
            return block
        mime = resource.get("mime_type") or "application/octet-stream"
        shown = human_size(binary_size(resource["blob"]))
        return _marker_block(f"[resource {resource.get('uri', '')} ({mime}, {shown}): over the"
                             " tool-result limit, not shown]")  # fmt: skip
    budget.total += len(json.dumps(block))
    return block


def cut_result(result: dict[str, Any], limit: int) -> dict[str, Any]:
    """``result`` with at most ``limit`` bytes of content for the model, and a marker if cut."""
    budget = _Budget(left=limit)
    blocks = [b for b in result.get("content") or [] if isinstance(b, dict)]
    kept = [c for c in (_cut_block(b, budget) for b in blocks) if c is not None]
    structured = result.get("structured_content")
    text = "" if structured is None else json.dumps(structured, separators=(",", ":"))
    if len(text.encode()) <= limit:
        if budget.cut == 0:
            return result
    else:
        structured = None  # the text blocks carry the same facts; without them, its text does
        if not blocks:
            kept.append(_marker_block(budget.take_text(text)))
    meta = dict(result.get("meta") or {})
    if budget.cut:
        shown = budget.total - budget.cut
        kept.append(_marker_block(
            f"[tool result cut: showing {shown:,} of {budget.total:,} bytes, {budget.cut:,}"
            f" bytes not shown (the server's max_result_bytes is {limit:,}); the full result"
            " is not kept]"
        ))  # fmt: skip
        meta[names.META_RESULT_CUT_BYTES] = budget.cut
    return {**result, "content": kept, "structured_content": structured, "meta": meta}
