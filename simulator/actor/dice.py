"""Deterministic randomness: every choice is a hash of (seed, conversation, turn, purpose).

No state and no ``random`` module: a retried or replayed request draws exactly the same
numbers, and two conversations never share a stream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Dice:
    seed: int
    conversation: str
    turn: int

    def uniform(self, purpose: str) -> float:
        """A number in [0, 1) fixed by the purpose (e.g. ``"wrong_tool:0"``)."""
        key = f"{self.seed}\x00{self.conversation}\x00{self.turn}\x00{purpose}"
        digest = hashlib.sha256(key.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def chance(self, purpose: str, rate: float) -> bool:
        """True with probability ``rate`` (never for 0, always for 1)."""
        return rate > 0 and self.uniform(purpose) < rate

    def pick(self, purpose: str, options: Sequence[T]) -> T:
        return options[int(self.uniform(purpose) * len(options))]
