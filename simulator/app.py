"""The simulator's HTTP app: OpenAI chat completions and Anthropic Messages on the wire
(simulator/anthropic_app.py), scripted scenarios and the actor behind both.

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

import json

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.anthropic_app import messages as anthropic_messages
from simulator.chaos import ROUTES as CHAOS_ROUTES
from simulator.play import CONVERSATION_HEADER, Simulator, play, serve
from simulator.webhooks import ROUTES as WEBHOOK_ROUTES
from simulator.wire import (
    ChatRequest,
    completion_body,
    completion_response,
    fault_response,
    openai_error,
    prompt_text,
    tool_message_problem,
)

__all__ = ["CONVERSATION_HEADER", "Simulator", "create_app"]


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
    turn = play(sim, chat, request.headers.get(CONVERSATION_HEADER))
    if turn is None:
        return openai_error(
            404,
            sim.unknown_model(chat.model),
            type_="invalid_request_error",
            code="model_not_found",
            param="model",
        )
    served = await serve(sim, request, chat.model, turn, chat.model_dump(mode="json"))
    if served.fault is not None:
        return fault_response(served.fault, served.attempt, turn.index)
    if served.gone:
        return Response(status_code=499)
    cached = 0
    if turn.scenario is not None and turn.scenario.prompt_cache:
        cached = sim.cache.openai(chat.model, prompt_text(chat))
    body = completion_body(chat, turn.turn, turn.conversation, turn.index, served.attempt, cached)
    sim.counters.record_completed(turn.conversation, turn.index)
    return completion_response(body, turn.turn.wire)


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
    """Forget the counters, the webhook events and the prompt cache: a clean slate."""
    sim: Simulator = request.app.state.sim
    return JSONResponse(
        {
            "status": "ok",
            "conversations_dropped": sim.counters.reset(),
            "webhook_events_dropped": sim.webhooks.reset(),
            "cache_entries_dropped": sim.cache.reset(),
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
            Route("/v1/messages", anthropic_messages, methods=["POST"]),
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
