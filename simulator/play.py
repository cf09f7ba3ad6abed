"""What both wires share: the simulator's state, the turn a request gets, and how it is served
(counted, recorded, maybe faulted, delayed) before the wire renders the answer.

The OpenAI route (simulator/app.py) and the Anthropic route (simulator/anthropic_app.py) each
parse their own body into the OpenAI-shaped request the scenarios and the actor read, then
hand it here; only the rendering of the answer and of errors differs between them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from simulator.actor import Actor, load_tiers, model_ids, parse_model
from simulator.cache import PromptCache
from simulator.chaos import ChaosSettings
from simulator.scenarios import FaultSpec, Scenario, TurnSpec
from simulator.state import Counters
from simulator.summary import is_summary_request, replaced_turns, summarize
from simulator.webhooks import WebhookSink
from simulator.wire import ChatRequest, conversation_id, text_of

log = logging.getLogger("simulator")

DEFAULT_CACHE_MIN_TOKENS = 1024
"""Anthropic's minimum for Sonnet and Opus 4 (and Keel's for a model it does not know)."""

CONVERSATION_HEADER = "X-Keel-Conversation"
"""Callers that know their conversation (Keel sends the workflow id) name it with this header."""


@dataclass
class Simulator:
    """What the routes share: the scenarios, the default latency, the counters, the webhooks,
    and the prompt cache (simulator/cache.py)."""

    scenarios: Mapping[str, Scenario]
    default_latency_ms: int = 0
    counters: Counters = field(default_factory=Counters)
    webhooks: WebhookSink = field(default_factory=WebhookSink)
    chaos: ChaosSettings = field(default_factory=ChaosSettings)
    actor: Actor = field(default_factory=lambda: Actor(load_tiers()))
    cache: PromptCache = field(default_factory=PromptCache)
    cache_min_tokens: int = DEFAULT_CACHE_MIN_TOKENS
    """The shortest prefix the Anthropic wire caches, for every model (``--cache-min-tokens``)."""

    def find(self, model: str) -> Scenario | None:
        """``sim/<name>`` or bare ``<name>`` selects a scenario."""
        return self.scenarios.get(model.removeprefix("sim/"))

    def model_ids(self) -> list[str]:
        return sorted([*(s.model_id for s in self.scenarios.values()), *model_ids()])

    def unknown_model(self, model: str) -> str:
        """The 404 message for a model that is neither a scenario nor an actor."""
        return f"model '{model}' not found; available: {', '.join(self.model_ids())}"


async def pause(request: Request, seconds: float) -> bool:
    """Sleep ``seconds``; False as soon as the client has gone (its answer would go nowhere).

    Polling for the disconnect keeps ``completed`` honest (only answers a client could read)
    and frees the handler of a hang whose caller already timed out.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        if await request.is_disconnected():
            return False
        remaining = deadline - loop.time()
        if remaining <= 0:
            return True
        await asyncio.sleep(min(remaining, 0.05))


def task_of(chat: ChatRequest) -> str:
    """The run's task: the first user message (what a scenario's ``from_task`` reads)."""
    return next((text_of(m.content) for m in chat.messages if m.role == "user"), "")


@dataclass(frozen=True)
class Play:
    """The turn a request gets: from a scenario (``scripted`` turns may carry faults) or
    from the actor (simulator/actor), which works the task instead of replaying one."""

    conversation: str
    index: int
    turn: TurnSpec
    scripted: bool
    scenario: Scenario | None = None


def play(sim: Simulator, chat: ChatRequest, header: str | None) -> Play | None:
    """The turn for ``chat`` (turn n = n assistant messages in it); None: unknown model."""
    index = sum(1 for m in chat.messages if m.role == "assistant") + replaced_turns(chat)
    if is_summary_request(chat):
        text, last = summarize(chat)
        conversation = conversation_id(chat, chat.model, header) + ".summary"
        return Play(conversation, last, TurnSpec(content=text), False)
    scenario = sim.find(chat.model)
    if scenario is not None:
        conversation = conversation_id(chat, scenario.name, header)
        turn, scripted = scenario.turn(index, task_of(chat))
        return Play(conversation, index, turn, scripted, scenario)
    seed = (chat.model_extra or {}).get("seed")
    actor = parse_model(chat.model, seed if isinstance(seed, int) else None)
    if actor is None:
        return None
    conversation = conversation_id(chat, chat.model, header)
    return Play(conversation, index, sim.actor.turn(chat, actor, conversation, index), False)


@dataclass(frozen=True)
class Served:
    """How a request ends before its answer: ``fault`` (an HTTP error to send), ``gone`` (the
    client left during a hang or the latency), else the turn's answer is rendered."""

    attempt: int
    fault: FaultSpec | None = None
    gone: bool = False


def _fault(sim: Simulator, turn: Play, attempt: int) -> FaultSpec | None:
    faults = turn.turn.faults
    fault = faults[attempt - 1] if turn.scripted and attempt <= len(faults) else None
    if fault is not None:
        return fault
    chaos = sim.chaos.pick(turn.conversation, turn.index, attempt)
    if chaos in ("500", "429"):
        status = int(chaos)
        return FaultSpec(kind="http", status=status, retry_after=1.0 if status == 429 else None)
    if chaos == "hang":
        return FaultSpec(kind="hang", seconds=sim.chaos.hang_seconds)
    return None


async def serve(
    sim: Simulator, request: Request, model: str, turn: Play, body: dict[str, Any]
) -> Served:
    """Count and record the request (``body`` as received), pick its fault (scripted, else
    chaos), and wait out a hang and the turn's latency."""
    attempt = sim.counters.record_request(turn.conversation, turn.index)
    sim.counters.record_body(turn.conversation, turn.index, body)
    fault = _fault(sim, turn, attempt)
    log.info(
        "%s conversation=%s turn=%d request=%d fault=%s",
        model, turn.conversation, turn.index, attempt, fault.kind if fault else "-",
    )  # fmt: skip
    if fault is not None and fault.kind == "http":
        return Served(attempt, fault=fault)
    if fault is not None and fault.seconds and not await pause(request, fault.seconds):
        log.info("conversation=%s turn=%d request=%d: client gone",
                 turn.conversation, turn.index, attempt)  # fmt: skip
        return Served(attempt, gone=True)
    spec = turn.turn
    latency_ms = spec.latency_ms if spec.latency_ms is not None else sim.default_latency_ms
    if not await pause(request, latency_ms / 1000):
        return Served(attempt, gone=True)
    return Served(attempt)
