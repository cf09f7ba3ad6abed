"""The simulator's prompt cache: what a provider would bill as cached, so savings show offline.

Both models are per model id (a provider caches per organization and model, not per
conversation: a second run with the same system prompt and tools reads the first one's prefix),
with entries that live ``TTL_SECONDS`` after their last use, as Anthropic's default cache and
OpenAI's (5-10 minutes) do. Token figures are the simulator's estimate, ``ceil(chars / 4)``,
so they are deterministic.

- **Anthropic** (explicit): for each ``cache_control`` breakpoint, the longest prefix that a
  previous request cached, ending at the breakpoint or at one of the ``LOOKBACK_BLOCKS``
  blocks before it, is read (``cache_read_input_tokens``); the prefix up to the breakpoint is
  then written (``cache_creation_input_tokens``: the part not read) when it reaches the
  minimum, else nothing happens, silently, as at Anthropic. The rest is ``input_tokens``.
- **OpenAI** (automatic, for scenarios with ``prompt_cache = true``): once a prompt reaches
  ``OPENAI_MIN_TOKENS``, the longest prefix seen before, in ``OPENAI_STEP_TOKENS`` steps from
  the minimum, is ``prompt_tokens_details.cached_tokens``.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

TTL_SECONDS = 300.0
LOOKBACK_BLOCKS = 20
CHARS_PER_TOKEN = 4
OPENAI_MIN_TOKENS = 1024
OPENAI_STEP_TOKENS = 128
MAX_ENTRIES = 100_000
"""Entries kept at most (the oldest go first): a long-running simulator must stay bounded."""


def tokens(chars: int) -> int:
    """The simulator's token estimate of ``chars`` characters (as simulator/wire.py's)."""
    return math.ceil(chars / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Block:
    """One block of an Anthropic prompt: the digest and size of the prefix ending with it, and
    whether it carries a breakpoint."""

    digest: str
    chars: int
    marked: bool


@dataclass(frozen=True)
class AnthropicUsage:
    """The three input figures of an Anthropic answer; they add up to the whole prompt."""

    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


class PromptCache:
    """Cached prefixes by (model, digest), with their expiry; thread-safe like the counters."""

    def __init__(
        self, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], float] = {}

    def _hit(self, key: tuple[str, str], now: float) -> bool:
        expiry = self._entries.get(key)
        return expiry is not None and expiry > now

    def _keep(self, key: tuple[str, str], now: float) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = now + self._ttl

    def anthropic(self, model: str, blocks: list[Block], minimum: int) -> AnthropicUsage:
        """Bill a prompt of ``blocks`` (in order) whose marked blocks are its breakpoints."""
        total = max(1, tokens(blocks[-1].chars)) if blocks else 1
        marks = [i for i, block in enumerate(blocks) if block.marked]
        read = written = 0
        with self._lock:
            now = self._clock()
            hits: list[int] = []
            for mark in marks:  # reads see the cache as it was before this request
                window = range(mark, max(-1, mark - LOOKBACK_BLOCKS - 1), -1)
                hit = next((i for i in window if self._hit((model, blocks[i].digest), now)), None)
                if hit is not None:
                    hits.append(hit)
                    read = max(read, tokens(blocks[hit].chars))
            for hit in hits:
                self._keep((model, blocks[hit].digest), now)
            for mark in marks:
                size = tokens(blocks[mark].chars)
                if size >= minimum:
                    self._keep((model, blocks[mark].digest), now)
                    written = max(written, size)
        created = max(0, written - read)
        return AnthropicUsage(max(0, total - read - created), created, read)

    def openai(self, model: str, text: str) -> int:
        """The cached tokens of a prompt whose text (in prompt order) is ``text``."""
        step = OPENAI_STEP_TOKENS * CHARS_PER_TOKEN
        first = OPENAI_MIN_TOKENS * CHARS_PER_TOKEN
        if len(text) < first:
            return 0
        digests: list[tuple[int, str]] = []
        hasher = hashlib.sha256(text[:first].encode())
        end = first
        while True:
            digests.append((end // CHARS_PER_TOKEN, hasher.copy().hexdigest()))
            if end + step > len(text):
                break
            hasher.update(text[end : end + step].encode())
            end += step
        cached = 0
        with self._lock:
            now = self._clock()
            for size, digest in digests:
                if self._hit((model, digest), now):
                    cached = size
            for _, digest in digests:
                self._keep((model, digest), now)
        return cached

    def reset(self) -> int:
        """Forget every entry; returns how many there were."""
        with self._lock:
            dropped = len(self._entries)
            self._entries.clear()
            return dropped
