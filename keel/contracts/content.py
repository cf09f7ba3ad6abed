"""Content by reference: what history carries in place of large or repeated content.

A run's conversation, large tool results, tasks and answers live in Keel's content store
(keel/runtime/store/), addressed by the SHA-256 of their bytes. History carries a
:class:`ContentRef` (about 100 bytes) instead, so a retried or replayed activity that stores
the same bytes gets the same reference. Stdlib and pydantic only: workflow code computes
digests with :func:`content_digest` too (hashing is deterministic).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field

DIGEST_PREFIX = "sha256:"
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
JSON_MEDIA_TYPE = "application/json"
TEXT_MEDIA_TYPE = "text/plain; charset=utf-8"


class ContentRef(BaseModel):
    """Stored content, by digest: ``sha256:<hex>`` of its bytes, its size and media type."""

    digest: str = Field(pattern=DIGEST_PATTERN)
    size: int = Field(ge=0, description="bytes of the stored content (before encryption)")
    media_type: str = JSON_MEDIA_TYPE


def content_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``: the content's address in the store."""
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value that Keel stores and digests: sorted keys, compact,
    UTF-8. The same value always has the same digest, whoever computes it.

    Text that UTF-8 cannot encode (a lone surrogate, which JSON from a model or a tool may
    carry) is written with ASCII escapes instead, so the digest never fails — in workflow
    code a failure would fail every workflow task."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def ref_for(data: bytes, media_type: str = JSON_MEDIA_TYPE) -> ContentRef:
    """The reference ``data`` gets when it is stored."""
    return ContentRef(digest=content_digest(data), size=len(data), media_type=media_type)
