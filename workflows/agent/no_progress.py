"""No-progress detection: pure bookkeeping the workflow updates after every tool turn.

Two signals, both configurable per profile and per run:

* the same tool called with the same arguments for the N-th time (``max_repeated_calls``);
* K consecutive steps that add no new information (``max_idle_steps``): every tool message
  of the step — a result, a validation refusal, a human's rejection — is one the model has
  already been given. A refusal or a rejection the model has not seen before is news (it
  may correct itself); the identical one again is not, so a model that keeps making the same
  refused call is still stopped (and the repeat counter stops the N-th identical call).

Fingerprints are canonical JSON, so argument order and whitespace do not hide a repeat.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def fingerprint(value: Any) -> str:
    """A stable digest of a JSON-like value (sorted keys, no whitespace)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class ProgressTracker:
    """Counts repeated calls and idle steps; ``verdict`` says when to stop."""

    max_repeated_calls: int
    max_idle_steps: int
    call_counts: dict[str, int] = field(default_factory=dict)
    seen_results: set[str] = field(default_factory=set)
    idle_steps: int = 0
    reason: str | None = None
    idle: list[tuple[int, str]] = field(default_factory=list)  # (step, tool) of the idle run

    def record_call(self, tool: str, arguments: Any) -> int:
        """Count one call of ``tool`` with ``arguments``; return how often it has been made."""
        key = f"{tool}:{fingerprint(arguments)}"
        self.call_counts[key] = self.call_counts.get(key, 0) + 1
        count = self.call_counts[key]
        if count >= self.max_repeated_calls and self.reason is None:
            self.reason = (
                f"{tool} was called {count} times with the same arguments"
                f" (max_repeated_calls={self.max_repeated_calls})"
            )
        return count

    def record_step(self, results: list[str], all_refused: bool) -> None:
        """After a tool turn, as before refusals counted as news (replay of older histories
        only; see :meth:`record_turn`): did it add a result not seen before?"""
        digests = [fingerprint(r) for r in results]
        new = [d for d in digests if d not in self.seen_results]
        self.seen_results.update(digests)
        if all_refused or not new:
            self.idle_steps += 1
        else:
            self.idle_steps = 0
        if self.idle_steps >= self.max_idle_steps and self.reason is None:
            what = "repeated invalid calls" if all_refused else "only results seen before"
            self.reason = (
                f"{self.idle_steps} consecutive steps added no new information ({what};"
                f" max_idle_steps={self.max_idle_steps})"
            )

    def record_turn(self, step: int, messages: list[tuple[str, str]]) -> None:
        """After a tool turn: did any of its tool messages ((tool, content): results and
        refusals alike) tell the model something it had not been told before?"""
        digests = [fingerprint(content) for _, content in messages]
        new = [d for d in digests if d not in self.seen_results]
        self.seen_results.update(digests)
        if new:
            self.idle_steps = 0
            self.idle.clear()
            return
        self.idle_steps += 1
        self.idle.extend((step, tool) for tool, _ in messages)
        if self.idle_steps >= self.max_idle_steps and self.reason is None:
            steps = sorted({s for s, _ in self.idle})
            tools = ", ".join(sorted({t for _, t in self.idle}))
            self.reason = (
                f"{self.idle_steps} consecutive steps added no new information (steps"
                f" {', '.join(map(str, steps))}: {tools} answered only what the model had"
                f" already been told; max_idle_steps={self.max_idle_steps})"
            )

    @property
    def stalled(self) -> bool:
        return self.reason is not None

    def reset(self) -> None:
        """Start counting afresh (after a human guided the run); results seen stay seen."""
        self.call_counts.clear()
        self.idle_steps = 0
        self.idle.clear()
        self.reason = None
