"""The shared base of Keel's strict boundary models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a profile must not silently become a default."""

    model_config = ConfigDict(extra="forbid")
