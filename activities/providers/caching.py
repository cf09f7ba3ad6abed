"""Anthropic prompt caching: where the ``cache_control`` breakpoints of a Messages body go.

Anthropic caches a prompt's prefix (tools, then system, then messages) up to a block marked
``cache_control: {"type": "ephemeral"}``, for five minutes after its last use, at most four
marks a request. A later request whose prefix up to one of its own marks matches a cached one
(at the mark, or at a block up to 20 before it) reads it at a tenth of the input price; writing
costs a quarter more than plain input. A prefix shorter than the model's minimum is never
cached, *silently*: the mark is ignored. So marks go only where they pay:

1. the last tool of the catalog (tools change least, and are shared by every run of a profile);
2. the last system block (tools + system prompt: shared by every run of the profile);
3. the last block of the user message before the last assistant message: the end of the
   previous request, which that request wrote, so this request reads it *exactly*, however many
   blocks the last turn added (parallel tool calls can add more than the 20-block look-back);
4. the last block of the last message: written now, read by the next step through mark 3.

Step after step a run therefore reads everything but its last turn and writes only that turn.
A mark is placed only when the prefix it closes reaches the minimum, estimated *low* (see
``prefix_tokens``): a mark below the minimum would do nothing and hide that it does nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from keel.contracts import ModelSettings

EPHEMERAL = {"type": "ephemeral"}
MAX_BREAKPOINTS = 4
CHARS_PER_TOKEN = 4
"""The estimate's ratio. Claude's tokenizer averages fewer characters per token (about 3.5 for
English prose, fewer for JSON), so counting four per token *under*-estimates a prefix: a mark is
never placed on a prefix below the minimum, at the price of skipping one just above it."""

DEFAULT_MIN_CACHE_TOKENS = 1024
"""The minimum of a model this table does not know: the smallest Anthropic documents."""

MIN_CACHE_TOKENS: tuple[tuple[str, int], ...] = (
    # Anthropic's prompt-caching docs, "minimum cacheable prompt length"; first match wins,
    # so the longer ids come before their prefixes ("claude-opus-4-5" before "claude-opus-4").
    ("claude-opus-4-6", 4096),
    ("claude-opus-4-5", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-sonnet-4-6", 2048),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
    ("claude-sonnet-4-5", 1024),
    ("claude-opus-4-1", 1024),
    ("claude-opus-4", 1024),
    ("claude-sonnet-4", 1024),
    ("claude-3-7-sonnet", 1024),
    ("claude-3-5-sonnet", 1024),
    ("claude-3-opus", 1024),
)

_ALIASES = re.compile(r"[._]")  # "claude-haiku-4.5", Bedrock's "anthropic.claude-…"


def min_cache_tokens(model: ModelSettings) -> int:
    """The shortest prefix the model caches: ``min_cache_tokens`` when the profile sets it,
    else the documented minimum of the model's family, found in its ``name`` and then in
    ``price_as`` (a model priced as ``claude-sonnet-4-5`` stands in for it, e.g. the
    simulator), else ``DEFAULT_MIN_CACHE_TOKENS``."""
    if model.min_cache_tokens is not None:
        return model.min_cache_tokens
    for ref in (model.name, model.price_as):
        normal = _ALIASES.sub("-", ref.lower())
        for family, minimum in MIN_CACHE_TOKENS:
            if family in normal:
                return minimum
    return DEFAULT_MIN_CACHE_TOKENS


def block_chars(block: dict[str, Any]) -> int:
    """Characters of one block that the estimate counts: a tool's JSON (name, description,
    schema), a text, a tool use's name and input, a tool result's texts. Images count
    nothing (they are billed by size, and leaving them out keeps the estimate low)."""
    kind = block.get("type")
    if kind is None or kind == "custom":  # a tool definition
        tool = {k: v for k, v in block.items() if k != "cache_control"}
        return len(json.dumps(tool, separators=(",", ":"), ensure_ascii=False))
    if kind == "text":
        return len(str(block.get("text", "")))
    if kind == "tool_use":
        arguments = json.dumps(block.get("input", {}), separators=(",", ":"), ensure_ascii=False)
        return len(str(block.get("name", ""))) + len(arguments)
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, str):
            return len(content)
        return sum(block_chars(part) for part in content if isinstance(part, dict))
    return 0


def prefix_tokens(chars: int) -> int:
    """The low estimate of a prefix of ``chars`` characters."""
    return chars // CHARS_PER_TOKEN


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every block in prompt order: tools, system, then each message's content."""
    blocks: list[dict[str, Any]] = list(body.get("tools") or [])
    blocks += list(body.get("system") or [])
    for message in body.get("messages") or []:
        blocks += list(message["content"])
    return blocks


def _candidates(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocks that may carry a mark, in prompt order (see the module docstring)."""
    tools, system = body.get("tools") or [], body.get("system") or []
    messages: list[dict[str, Any]] = body.get("messages") or []
    out: list[dict[str, Any]] = []
    if tools:
        out.append(tools[-1])
    if system:
        out.append(system[-1])
    assistants = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if assistants and assistants[-1] > 0:
        out.append(messages[assistants[-1] - 1]["content"][-1])
    if messages:
        out.append(messages[-1]["content"][-1])
    return out


def place_breakpoints(body: dict[str, Any], minimum: int) -> list[int]:
    """Mark the blocks of ``body`` (a Messages body whose message contents are block lists)
    that close a prefix of at least ``minimum`` estimated tokens, in place; returns the
    estimated size of each marked prefix (for tests and logs)."""
    wanted = {id(block) for block in _candidates(body)}
    placed: list[int] = []
    chars = 0
    for block in _blocks(body):
        chars += block_chars(block)
        if id(block) not in wanted or len(placed) == MAX_BREAKPOINTS:
            continue
        wanted.discard(id(block))
        if prefix_tokens(chars) >= minimum:
            block["cache_control"] = dict(EPHEMERAL)
            placed.append(prefix_tokens(chars))
    return placed
