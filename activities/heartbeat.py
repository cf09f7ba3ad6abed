"""Heartbeating while an activity awaits I/O, so Temporal can tell it is alive and deliver
cancellations to it (shared by the LLM activity and the MCP tool-call interceptor)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")
HEARTBEAT_INTERVAL_SECONDS = 2.0


async def heartbeating(work: Awaitable[T], interval: float = HEARTBEAT_INTERVAL_SECONDS) -> T:
    """Await ``work`` while heartbeating, so Temporal can deliver a cancellation to it.

    Without heartbeats an activity never learns that its workflow gave up on it (wall clock
    reached, run cancelled) and its HTTP request would run to the end; with them, the
    cancellation arrives as ``CancelledError`` here and aborts the request.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                return task.result()
            if activity.in_activity():
                activity.heartbeat()
    finally:
        if not task.done():
            task.cancel()
