"""Per-conversation, per-turn request counters: the only state the simulator keeps.

Which turn to play is derived from the request itself (the number of assistant messages), so the
counters exist for two reasons: to decide which request of a turn a fault hits (the first, the
second, ...) and to let tests prove what actually happened on the wire, e.g. that a 429 was
retried exactly twice and answered once, or that a resumed run did not repeat a model call.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class TurnCounters:
    """``requests`` counts every request received; ``completed`` the 200 answers sent."""

    requests: int = 0
    completed: int = 0
    request_times: list[float] = field(default_factory=list)  # wall clock, for timelines

    def as_dict(self) -> dict[str, int]:
        return {"requests": self.requests, "completed": self.completed}


class Counters:
    """Thread-safe counters keyed by conversation id, then turn index.

    The server runs on one event loop, but the lock keeps the counters correct if a caller
    embeds the app in a threaded server or reads them from another thread; no ``await`` ever
    happens while it is held.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[int, TurnCounters]] = {}

    def record_request(self, conversation: str, turn: int) -> int:
        """Count an arriving request; returns its 1-based number within this turn."""
        with self._lock:
            counters = self._data.setdefault(conversation, {}).setdefault(turn, TurnCounters())
            counters.requests += 1
            counters.request_times.append(time.time())
            return counters.requests

    def record_completed(self, conversation: str, turn: int) -> None:
        """Count a 200 answer that was produced for a client still connected."""
        with self._lock:
            self._data.setdefault(conversation, {}).setdefault(turn, TurnCounters()).completed += 1

    def conversation(self, conversation: str) -> dict[str, dict[str, int]] | None:
        """One conversation as ``{turn: {requests, completed}}``, or None if never seen."""
        with self._lock:
            turns = self._data.get(conversation)
            if turns is None:
                return None
            return {str(turn): c.as_dict() for turn, c in sorted(turns.items())}

    def timeline(self, conversation: str) -> dict[str, list[float]] | None:
        """When each request of each turn arrived (epoch seconds): lets a test compare them
        with the time the workflow recorded a turn as completed."""
        with self._lock:
            turns = self._data.get(conversation)
            if turns is None:
                return None
            return {str(turn): list(c.request_times) for turn, c in sorted(turns.items())}

    def snapshot(self) -> dict[str, dict[str, dict[str, int]]]:
        """Every conversation (JSON-ready: turn indexes become string keys)."""
        with self._lock:
            return {
                conv: {str(turn): c.as_dict() for turn, c in sorted(turns.items())}
                for conv, turns in self._data.items()
            }

    def reset(self) -> int:
        """Forget everything; returns how many conversations were dropped."""
        with self._lock:
            dropped = len(self._data)
            self._data.clear()
            return dropped
