"""Random faults for chaos tests: a share of all chat requests fail (500 or 429) or hang.

Off by default. ``POST /v1/sim/chaos {"error_rate": 0.1, "hang_rate": 0.05, "hang_seconds": 30,
"seed": 7}`` turns it on for every scenario; ``{"error_rate": 0, "hang_rate": 0}`` turns it off.
The draw is a pure function of (seed, conversation, turn, request number), so a failing chaos run
replays the same faults. Scripted faults of a scenario take precedence.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ChaosFault = Literal["500", "429", "hang"]


class ChaosSettings(BaseModel):
    error_rate: float = Field(default=0.0, ge=0, le=1)
    hang_rate: float = Field(default=0.0, ge=0, le=1)
    hang_seconds: float = Field(default=30.0, gt=0, le=600)
    seed: int = 0

    def pick(self, conversation: str, turn: int, attempt: int) -> ChaosFault | None:
        """The fault for this request, if any."""
        if self.error_rate == 0 and self.hang_rate == 0:
            return None
        digest = hashlib.sha256(f"{self.seed}:{conversation}:{turn}:{attempt}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        if draw < self.error_rate:
            return "500" if digest[8] % 2 else "429"
        if draw < self.error_rate + self.hang_rate:
            return "hang"
        return None


async def get_chaos(request: Request) -> Response:
    return JSONResponse(request.app.state.sim.chaos.model_dump())


async def set_chaos(request: Request) -> Response:
    try:
        settings = ChaosSettings.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        return JSONResponse({"error": {"message": f"invalid chaos settings: {exc}"}}, 400)
    request.app.state.sim.chaos = settings
    return JSONResponse(settings.model_dump())


ROUTES = [
    Route("/v1/sim/chaos", get_chaos, methods=["GET"]),
    Route("/v1/sim/chaos", set_chaos, methods=["POST"]),
]
