"""The actor's tiers: competence knobs per tier, the store it works for, and model ids.

``tiers.toml`` beside this module is loaded and validated once at start-up (like scenarios),
so a misspelt knob fails the simulator's start with the field named.
"""

from __future__ import annotations

import datetime
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

TIERS_FILE = Path(__file__).resolve().parent / "tiers.toml"
DEFAULT_TIER = "medium"
TIER_NAMES = ("small", "medium", "large")
_MODEL = re.compile(r"^(?:sim/)?actor(?:-(small|medium|large))?(?:@(\d{1,9}))?$")

Rate = float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    """How competent one tier is; every rate is a probability per decision (see tiers.toml)."""

    wrong_arguments: Rate = Field(ge=0, le=1)
    invented_ids: Rate = Field(ge=0, le=1)
    wrong_tool: Rate = Field(ge=0, le=1)
    loops: Rate = Field(ge=0, le=1)
    premature_answer: Rate = Field(ge=0, le=1)
    follows_injection: Rate = Field(ge=0, le=1)
    invalid_answer: Rate = Field(ge=0, le=1)
    confidence_noise: float = Field(ge=0, le=1)
    confidence_bias: float = Field(ge=-1, le=1)
    latency_ms: int = Field(ge=0, le=600_000)


class Store(_Strict):
    """What the actor knows of the store's policy and its clock."""

    today: datetime.date
    refund_window_days: int = Field(ge=0)
    agent_refund_limit: float = Field(gt=0)


class TierFile(_Strict):
    store: Store
    tiers: dict[str, Tier]

    def tier(self, name: str) -> Tier:
        return self.tiers[name]


class TierError(ValueError):
    """tiers.toml cannot be used; ``str()`` is one readable line."""


def load_tiers(path: Path = TIERS_FILE) -> TierFile:
    """Parse and validate the tier file; every tier of :data:`TIER_NAMES` must be there."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        loaded = TierFile.model_validate(data)
    except OSError as exc:
        raise TierError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TierError(f"{path}: invalid TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TierError(f"{path}: {where}: {first['msg']}") from None
    missing = [name for name in TIER_NAMES if name not in loaded.tiers]
    if missing:
        raise TierError(f"{path}: missing tier(s): {', '.join(missing)}")
    return loaded


@dataclass(frozen=True)
class ActorModel:
    """A parsed actor model id: its tier and seed."""

    tier: str
    seed: int


def parse_model(model: str, seed: int | None = None) -> ActorModel | None:
    """``sim/actor``, ``sim/actor-large``, ``sim/actor-small@7`` → tier and seed; None when the
    id is not an actor's. The id's ``@seed`` wins over the request's ``seed`` field."""
    match = _MODEL.match(model)
    if match is None:
        return None
    tier, id_seed = match.groups()
    chosen = int(id_seed) if id_seed is not None else (seed or 0)
    return ActorModel(tier=tier or DEFAULT_TIER, seed=chosen)


def model_ids() -> list[str]:
    """The ids /v1/models lists for the actor."""
    return ["sim/actor", *(f"sim/actor-{name}" for name in TIER_NAMES)]
