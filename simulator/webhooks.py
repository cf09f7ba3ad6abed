"""A webhook sink: JSON POSTed to a channel is kept so a test can read back what was sent.

Keel notifies people through webhooks (an approval that escalates POSTs JSON to a configured
URL). Proving that needs a real HTTP receiver, and the simulator is already a process of every
stack, so it doubles as one: ``POST /v1/sim/webhooks/{channel}`` stores the body with the time
it arrived, ``GET`` on the same path lists what arrived, ``POST /v1/sim/reset`` forgets it all.
Channels keep tests (and runs) apart: each uses its own channel name.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_EVENTS_PER_CHANNEL = 1000
"""A sink left running (``make up``) must not grow without bound; the oldest events go first."""


class WebhookSink:
    """Thread-safe events by channel, in arrival order (same locking rationale as Counters)."""

    def __init__(self, max_events: int = MAX_EVENTS_PER_CHANNEL) -> None:
        self._lock = threading.Lock()
        self._max_events = max_events
        self._channels: dict[str, deque[dict[str, Any]]] = {}

    def record(self, channel: str, body: Any) -> dict[str, Any]:
        """Store ``body``; returns the stored event ``{seq, received_at, body}``."""
        with self._lock:
            events = self._channels.setdefault(channel, deque(maxlen=self._max_events))
            seq = (events[-1]["seq"] + 1) if events else 1
            event = {"seq": seq, "received_at": datetime.now(UTC).isoformat(), "body": body}
            events.append(event)
            return event

    def events(self, channel: str) -> list[dict[str, Any]]:
        """What arrived on ``channel``, oldest first; empty for a channel never posted to."""
        with self._lock:
            return list(self._channels.get(channel, ()))

    def reset(self) -> int:
        """Forget every channel; returns how many events were dropped."""
        with self._lock:
            dropped = sum(len(events) for events in self._channels.values())
            self._channels.clear()
            return dropped


def _sink(request: Request) -> WebhookSink:
    sink: WebhookSink = request.app.state.webhooks
    return sink


async def receive(request: Request) -> Response:
    """``POST /v1/sim/webhooks/{channel}``: store a JSON body (400 if it is not JSON)."""
    channel = request.path_params["channel"]
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        # Raised, so the app's handler answers in the same error shape as every other route.
        raise HTTPException(400, f"webhook body is not valid JSON: {exc}") from None
    event = _sink(request).record(channel, body)
    return JSONResponse(
        {"status": "ok", "channel": channel, "seq": event["seq"]},
        status_code=200,
    )


async def list_events(request: Request) -> Response:
    """``GET /v1/sim/webhooks/{channel}``: ``{"channel", "events": [...]}``, oldest first."""
    channel = request.path_params["channel"]
    return JSONResponse({"channel": channel, "events": _sink(request).events(channel)})


ROUTES = [
    Route("/v1/sim/webhooks/{channel}", receive, methods=["POST"]),
    Route("/v1/sim/webhooks/{channel}", list_events, methods=["GET"]),
]
