"""Per-conversation, per-turn request counters: the only state the simulator keeps.

Which turn to play is derived from the request itself (the number of assistant messages), so the
counters exist for two reasons: to decide which request of a turn a fault hits (the first, the
second, ...) and to let tests prove what actually happened on the wire, e.g. that a 429 was
retried exactly twice and answered once, or that a resumed run did not repeat a model call.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

RECORDED_BODIES = 20
"""Request bodies kept per conversation (the most recent ones), for tests to inspect."""
RECORDED_CONVERSATIONS = 200
"""Conversations whose bodies are kept (the most recently started): a long-running simulator
must not grow without bound."""


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
        self._bodies: dict[str, deque[dict[str, Any]]] = {}

    def record_request(self, conversation: str, turn: int) -> int:
        """Count an arriving request; returns its 1-based number within this turn."""
        with self._lock:
            counters = self._data.setdefault(conversation, {}).setdefault(turn, TurnCounters())
            counters.requests += 1
            counters.request_times.append(time.time())
            return counters.requests

    def record_body(self, conversation: str, turn: int, body: dict[str, Any]) -> None:
        """Keep a request body as received (the last ``RECORDED_BODIES`` per conversation)."""
        with self._lock:
            kept = self._bodies.get(conversation)
            if kept is None:
                while len(self._bodies) >= RECORDED_CONVERSATIONS:
                    del self._bodies[next(iter(self._bodies))]
                kept = self._bodies[conversation] = deque(maxlen=RECORDED_BODIES)
            kept.append({"turn": turn, "body": body})

    def bodies(self, conversation: str) -> list[dict[str, Any]] | None:
        """The kept request bodies of a conversation, oldest first; None if never seen."""
        with self._lock:
            kept = self._bodies.get(conversation)
            return None if kept is None else list(kept)

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
            self._bodies.clear()
            return dropped
