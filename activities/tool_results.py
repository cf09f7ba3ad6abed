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
- a final text block says how much was cut and where the full result is: ``[tool result cut:
  showing 65,536 of 1,500,123 bytes … the full result is stored as sha256:…]``.

With a content store (:func:`keep_result`), the worker also stores the full result of a cut
one (the canonical JSON of the whole ``CallToolResult`` as the server answered it,
``_meta["keel/content"]``) and the
model's view of what it returns (``activities/tool_view.py:view_bytes``, ``_meta["keel/view"]``):
the workflow sends the tool message by that reference and keeps the full one in the step's
record. A server's own values under those keys are dropped. A store that cannot be written
leaves the result as it would be without one: the tool has run, so failing now would run it
again.

Works on the JSON form of ``CallToolResult`` that temporalio-mcp returns (snake_case keys).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from mcp.types import CallToolResult
from pydantic import ValidationError

from activities.tool_view import view_bytes
from keel.contracts import ServerSettings, canonical_json, names
from keel.contracts.sizes import human_size
from keel.runtime.logs import get_logger
from keel.runtime.store.blobs import StoreError
from keel.runtime.store.content import ContentStore

DEFAULT_MAX_RESULT_BYTES: int = ServerSettings.model_fields["max_result_bytes"].default
"""The cut when a request does not say (a workflow from before the setting existed)."""
STORE_KEYS = (names.META_VIEW, names.META_CONTENT)
# What the worker stamps on a result per attempt: not part of the stored full result, whose
# digest is then the same for every attempt that got the same answer.
STAMP_KEYS = (names.META_ATTEMPT, names.META_LATENCY_MS)

log = get_logger("keel.activities.tool_results")


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


def cut_result(result: dict[str, Any], limit: int, stored: str | None = None) -> dict[str, Any]:
    """``result`` with at most ``limit`` bytes of content for the model, and a marker if cut
    (naming ``stored``, the digest of the full result, when it is in the content store)."""
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
            + (f" is stored as {stored}]" if stored else " is not kept]")
        ))  # fmt: skip
        meta[names.META_RESULT_CUT_BYTES] = budget.cut
    return {**result, "content": kept, "structured_content": structured, "meta": meta}


def without_store_keys(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` without ``keel/view`` and ``keel/content`` in its ``_meta``: only the worker
    sets them, after it stored what they name."""
    meta = result.get("meta")
    if not isinstance(meta, dict) or not any(key in meta for key in STORE_KEYS):
        return result
    return {**result, "meta": {k: v for k, v in meta.items() if k not in STORE_KEYS}}


def unstamped(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` as the server answered it: without the worker's per-attempt stamps."""
    meta = {k: v for k, v in (result.get("meta") or {}).items() if k not in STAMP_KEYS}
    return {**result, "meta": meta or None}


async def keep_result(
    store: ContentStore | None, full: dict[str, Any], limit: int
) -> dict[str, Any]:
    """``full`` cut to ``limit`` (:func:`cut_result`); with a store, the full result of a cut
    one and the model's view stored and named in ``_meta`` (see the module docstring)."""
    full = without_store_keys(full)
    cut = cut_result(full, limit)
    if store is None:
        return cut
    try:
        meta: dict[str, Any] = {}
        if cut is not full:
            content = await store.put(canonical_json(unstamped(full)))
            cut = cut_result(full, limit, stored=content.digest)
            meta[names.META_CONTENT] = content.model_dump(mode="json")
        view = await store.put(view_bytes(CallToolResult.model_validate(cut)))
        meta[names.META_VIEW] = view.model_dump(mode="json")
    except StoreError as exc:
        log.warning("tool result not stored", store=store.describe(), error=str(exc))
        return cut
    except ValidationError:
        return cut  # not a CallToolResult: the workflow will refuse it, as without a store
    return {**cut, "meta": {**(cut.get("meta") or {}), **meta}}
