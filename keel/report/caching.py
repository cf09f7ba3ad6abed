"""The report's prompt-cache figures: how much of the input came from a provider's cache, and
what that saved (docs/operations.md, "Anthropic provider and prompt caching").

Hit rate is cached input tokens over input tokens (input includes them, as Keel's ``Usage``
counts it). Saved is the sum of the model steps' ``cache_saved_usd``: cached tokens at the
input price minus at the cached price, minus the premium paid to write tokens to the cache;
the workflow computes it with the price the run was billed at (keel.contracts.cache_savings).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from keel.contracts import StepRecord

HEADERS = ["model", "steps", "input", "cached", "written", "hit rate", "saved"]
TITLE = "Prompt cache (hit rate = cached / input tokens; saved: see docs/operations.md)"


class CacheRow(BaseModel):
    """Prompt-cache use of model steps: all of them (``model="*"``) or one model's."""

    model: str
    steps: int
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    hit_rate: float | None = Field(description="cached_tokens / input_tokens")
    saved_usd: float = Field(description="sum of the steps' cache_saved_usd (may be negative)")


def _row(model: str, steps: Sequence[StepRecord]) -> CacheRow:
    usages = [s.usage for s in steps if s.usage is not None]
    total = sum(u.input_tokens for u in usages)
    cached = sum(u.cached_tokens for u in usages)
    return CacheRow(
        model=model,
        steps=len(usages),
        input_tokens=total,
        cached_tokens=cached,
        cache_write_tokens=sum(u.cache_write_tokens for u in usages),
        hit_rate=cached / total if total else None,
        saved_usd=sum(s.cache_saved_usd or 0.0 for s in steps),
    )


def cache_rows(steps: Sequence[StepRecord]) -> list[CacheRow]:
    """All model steps with usage (``*``), then each model's; none when nothing was cached."""
    with_usage = [s for s in steps if s.kind == "model" and s.usage is not None]
    if not any(s.usage and (s.usage.cached_tokens or s.usage.cache_write_tokens)
               for s in with_usage):  # fmt: skip
        return []
    by_model: dict[str, list[StepRecord]] = {}
    for step in with_usage:
        by_model.setdefault(step.name, []).append(step)
    return [_row("*", with_usage)] + [_row(m, by_model[m]) for m in sorted(by_model)]


def cells(row: CacheRow) -> list[str]:
    """One row as the text and HTML tables show it."""
    rate = "-" if row.hit_rate is None else f"{row.hit_rate * 100:.1f}%"
    return [row.model, str(row.steps), str(row.input_tokens), str(row.cached_tokens),
            str(row.cache_write_tokens), rate, f"${row.saved_usd:.6f}"]  # fmt: skip
