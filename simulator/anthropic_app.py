"""``POST /v1/messages``: Anthropic's Messages API, played by the same scenarios and actor as
the chat-completions route (simulator/app.py), with the same counters, faults and chaos.

The recorded body (``/v1/sim/conversations/{id}/requests``) is the Anthropic body as received,
``cache_control`` marks included, so a test can check where a client put its breakpoints.
"""

from __future__ import annotations

import json

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from simulator.anthropic_check import MessagesRequest, problem
from simulator.anthropic_wire import (
    anthropic_error,
    as_chat,
    fault_response,
    message_body,
    message_response,
)
from simulator.play import CONVERSATION_HEADER, Simulator, play, serve

API_VERSION_HEADER = "anthropic-version"


async def _parse(request: Request) -> MessagesRequest | JSONResponse:
    """The validated body, or the 400 Anthropic would answer."""
    if not request.headers.get(API_VERSION_HEADER):
        return anthropic_error(400, f"{API_VERSION_HEADER}: header is required")
    try:
        payload = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return anthropic_error(400, f"There was an issue with your request body: {exc}")
    if not isinstance(payload, dict):
        return anthropic_error(400, "request body must be a JSON object")
    try:
        body = MessagesRequest.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return anthropic_error(400, f"{where}: {first['msg']}")
    found = problem(body)
    if found is not None:
        return anthropic_error(400, found)
    if body.stream:
        return anthropic_error(400, "stream: true is not supported by the Keel simulator")
    return body


async def messages(request: Request) -> Response:
    """Count, maybe inject a fault, wait, answer the turn as an Anthropic message."""
    sim: Simulator = request.app.state.sim
    body = await _parse(request)
    if isinstance(body, JSONResponse):
        return body
    chat = as_chat(body)
    turn = play(sim, chat, request.headers.get(CONVERSATION_HEADER))
    if turn is None:
        return anthropic_error(404, sim.unknown_model(body.model))
    served = await serve(sim, request, body.model, turn, body.model_dump(exclude_none=True))
    if served.fault is not None:
        return fault_response(served.fault, served.attempt, turn.index)
    if served.gone:
        return Response(status_code=499)
    ids = (turn.conversation, turn.index, served.attempt)
    answer = message_body(body, turn.turn, ids, (sim.cache, sim.cache_min_tokens))
    sim.counters.record_completed(turn.conversation, turn.index)
    return message_response(answer, turn.turn.wire)
