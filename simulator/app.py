"""The simulator's HTTP app: OpenAI chat-completions on the wire, scripted scenarios behind it.

Keel's OpenAI-compatible provider talks to this server exactly as it talks to OpenAI, vLLM or
Ollama, so everything the provider does (request shape, tool-call parsing, error mapping,
Retry-After, timeouts) is exercised for real in tests and the demo. The turn to play is derived
from the request (the number of assistant messages in it, plus those a Keel summary message
stands for), so a retried or resumed call gets the same answer and concurrent conversations
never share state beyond their counters. A Keel summary request (simulator/summary.py) gets a
deterministic summary from any simulated model; it is counted and recorded under the
conversation id with ``.summary`` appended.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.actor import Actor, load_tiers, model_ids, parse_model
from simulator.chaos import ROUTES as CHAOS_ROUTES
from simulator.chaos import ChaosSettings
from simulator.scenarios import FaultSpec, Scenario, TurnSpec
from simulator.state import Counters
from simulator.summary import is_summary_request, replaced_turns, summarize
from simulator.webhooks import ROUTES as WEBHOOK_ROUTES
from simulator.webhooks import WebhookSink
from simulator.wire import (
    ChatRequest,
    completion_body,
    completion_response,
    conversation_id,
    fault_response,
    openai_error,
    text_of,
    tool_message_problem,
)

log = logging.getLogger("simulator")

CONVERSATION_HEADER = "X-Keel-Conversation"
"""Callers that know their conversation (Keel sends the workflow id) name it with this header."""


@dataclass
class Simulator:
    """What the routes share: the scenarios, the default latency, the counters, the webhooks."""

    scenarios: Mapping[str, Scenario]
    default_latency_ms: int = 0
    counters: Counters = field(default_factory=Counters)
    webhooks: WebhookSink = field(default_factory=WebhookSink)
    chaos: ChaosSettings = field(default_factory=ChaosSettings)
    actor: Actor = field(default_factory=lambda: Actor(load_tiers()))

    def find(self, model: str) -> Scenario | None:
        """``sim/<name>`` or bare ``<name>`` selects a scenario."""
        return self.scenarios.get(model.removeprefix("sim/"))

    def model_ids(self) -> list[str]:
        return sorted([*(s.model_id for s in self.scenarios.values()), *model_ids()])


async def _pause(request: Request, seconds: float) -> bool:
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


# ------------------------------------------------------------------------------------------
# Routes
# ------------------------------------------------------------------------------------------


async def _parse(request: Request) -> ChatRequest | JSONResponse:
    """The validated body, or the 400 answer OpenAI would give."""
    raw = await request.body()
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return openai_error(400, f"request body is not valid JSON: {exc}", code="invalid_json")
    if not isinstance(payload, dict):
        return openai_error(400, "request body must be a JSON object", code="invalid_json")
    try:
        chat = ChatRequest.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return openai_error(
            400, f"invalid request: {where}: {first['msg']}", code="invalid_value", param=where
        )
    problem = tool_message_problem(chat.messages)
    if problem is not None:
        return openai_error(400, problem, param="messages")
    return chat


def _task_of(chat: ChatRequest) -> str:
    """The run's task: the first user message (what a scenario's ``from_task`` reads)."""
    return next((text_of(m.content) for m in chat.messages if m.role == "user"), "")


@dataclass(frozen=True)
class _Play:
    """The turn a request gets: from a scenario (``scripted`` turns may carry faults) or
    from the actor (simulator/actor), which works the task instead of replaying one."""

    conversation: str
    index: int
    turn: TurnSpec
    scripted: bool


def _play(sim: Simulator, chat: ChatRequest, header: str | None) -> _Play | JSONResponse:
    index = sum(1 for m in chat.messages if m.role == "assistant") + replaced_turns(chat)
    if is_summary_request(chat):
        text, last = summarize(chat)
        conversation = conversation_id(chat, chat.model, header) + ".summary"
        return _Play(conversation, last, TurnSpec(content=text), False)
    scenario = sim.find(chat.model)
    if scenario is not None:
        conversation = conversation_id(chat, scenario.name, header)
        turn, scripted = scenario.turn(index, _task_of(chat))
        return _Play(conversation, index, turn, scripted)
    seed = (chat.model_extra or {}).get("seed")
    actor = parse_model(chat.model, seed if isinstance(seed, int) else None)
    if actor is None:
        available = ", ".join(sim.model_ids())
        return openai_error(
            404,
            f"model '{chat.model}' not found; available: {available}",
            type_="invalid_request_error",
            code="model_not_found",
            param="model",
        )
    conversation = conversation_id(chat, chat.model, header)
    return _Play(conversation, index, sim.actor.turn(chat, actor, conversation, index), False)


async def chat_completions(request: Request) -> Response:
    """``POST /v1/chat/completions``: count, maybe inject a fault, wait, answer the turn."""
    sim: Simulator = request.app.state.sim
    chat = await _parse(request)
    if isinstance(chat, JSONResponse):
        return chat
    if chat.stream:
        return openai_error(
            400,
            "stream=true is not supported by the Keel simulator; send stream=false",
            code="unsupported_value",
            param="stream",
        )
    play = _play(sim, chat, request.headers.get(CONVERSATION_HEADER))
    if isinstance(play, JSONResponse):
        return play
    conversation, turn_index, turn = play.conversation, play.index, play.turn
    scripted = play.scripted
    attempt = sim.counters.record_request(conversation, turn_index)
    sim.counters.record_body(conversation, turn_index, chat.model_dump(mode="json"))
    fault = turn.faults[attempt - 1] if scripted and attempt <= len(turn.faults) else None
    log.info(
        "%s conversation=%s turn=%d request=%d fault=%s",
        chat.model,
        conversation,
        turn_index,
        attempt,
        fault.kind if fault else "-",
    )
    if fault is None:
        chaos = sim.chaos.pick(conversation, turn_index, attempt)
        if chaos in ("500", "429"):
            status = int(chaos)
            fault = FaultSpec(
                kind="http", status=status, retry_after=1.0 if status == 429 else None
            )
        elif chaos == "hang":
            fault = FaultSpec(kind="hang", seconds=sim.chaos.hang_seconds)
    if fault is not None and fault.kind == "http":
        return fault_response(fault, attempt, turn_index)
    if fault is not None and fault.seconds and not await _pause(request, fault.seconds):
        log.info(
            "conversation=%s turn=%d request=%d: client gone", conversation, turn_index, attempt
        )
        return Response(status_code=499)
    latency_ms = turn.latency_ms if turn.latency_ms is not None else sim.default_latency_ms
    if not await _pause(request, latency_ms / 1000):
        return Response(status_code=499)
    body = completion_body(chat, turn, conversation, turn_index, attempt)
    sim.counters.record_completed(conversation, turn_index)
    return completion_response(body, turn.wire)


async def list_models(request: Request) -> Response:
    """``GET /v1/models`` in OpenAI's list format, so clients can discover the scenarios."""
    sim: Simulator = request.app.state.sim
    data = [
        {"id": model_id, "object": "model", "created": 0, "owned_by": "keel-simulator"}
        for model_id in sim.model_ids()
    ]
    return JSONResponse({"object": "list", "data": data})


async def healthz(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    return JSONResponse({"status": "ok", "scenarios": len(sim.scenarios)})


async def all_conversations(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    return JSONResponse(sim.counters.snapshot())


async def one_conversation(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    conversation = request.path_params["conversation_id"]
    counters = sim.counters.conversation(conversation)
    if counters is None:
        return openai_error(
            404, f"conversation '{conversation}' not seen", code="conversation_not_found"
        )
    return JSONResponse(counters)


async def timeline(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    conversation = request.path_params["conversation_id"]
    turns = sim.counters.timeline(conversation)
    if turns is None:
        return openai_error(404, f"no conversation {conversation!r}", code="not_found")
    return JSONResponse({"conversation_id": conversation, "request_times": turns})


async def received(request: Request) -> Response:
    """The last request bodies of a conversation as received (``RECORDED_BODIES`` of them):
    lets a test check what a client actually sent, e.g. the image parts of a message."""
    sim: Simulator = request.app.state.sim
    conversation = request.path_params["conversation_id"]
    bodies = sim.counters.bodies(conversation)
    if bodies is None:
        return openai_error(404, f"no conversation {conversation!r}", code="not_found")
    return JSONResponse({"conversation_id": conversation, "requests": bodies})


async def reset(request: Request) -> Response:
    """Forget the counters and the webhook events: a clean slate for the next test."""
    sim: Simulator = request.app.state.sim
    return JSONResponse(
        {
            "status": "ok",
            "conversations_dropped": sim.counters.reset(),
            "webhook_events_dropped": sim.webhooks.reset(),
        }
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods answer in OpenAI's error shape too."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return openai_error(status, f"{request.method} {request.url.path}: {detail}")


def create_app(simulator: Simulator) -> Starlette:
    """The Starlette app serving ``simulator`` (the CLI wraps it in uvicorn)."""
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v1/sim/conversations", all_conversations, methods=["GET"]),
            Route("/v1/sim/conversations/{conversation_id}", one_conversation, methods=["GET"]),
            Route("/v1/sim/reset", reset, methods=["POST"]),
            Route("/v1/sim/conversations/{conversation_id}/timeline", timeline, methods=["GET"]),
            Route("/v1/sim/conversations/{conversation_id}/requests", received, methods=["GET"]),
            *WEBHOOK_ROUTES,
            *CHAOS_ROUTES,
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.sim = simulator
    app.state.webhooks = simulator.webhooks
    return app
