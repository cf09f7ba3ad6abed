"""Per-run limits: the profile sets ceilings, the caller may only lower them.

Pure functions, used inside the workflow (deterministic) and by the CLI for early errors.
"""

from __future__ import annotations

from keel.contracts.profile import Limits
from keel.contracts.run import LimitOverrides


class LimitError(ValueError):
    """A per-run override asks for more than the profile allows."""


def effective_limits(ceiling: Limits, overrides: LimitOverrides | None) -> Limits:
    """The limits a run enforces: each override, checked against the profile's ceiling.

    A ceiling of ``None`` (unlimited) accepts any override; an override of ``None`` keeps
    the ceiling.
    """
    if overrides is None:
        return ceiling
    values = ceiling.model_dump()
    for field, requested in overrides.model_dump(exclude_none=True).items():
        allowed = values[field]
        if allowed is not None and requested > allowed:
            raise LimitError(
                f"limits.{field}={requested} exceeds the profile's ceiling of {allowed};"
                " a run may lower a limit, never raise it"
            )
        values[field] = requested
    return Limits.model_validate(values)


def extend_limits(current: Limits, extension: LimitOverrides) -> Limits:
    """Raise limits for a run once a human guided it (escalation): the new values replace
    the old ones where they are higher; nothing is ever lowered by an extension."""
    values = current.model_dump()
    for field, requested in extension.model_dump(exclude_none=True).items():
        allowed = values[field]
        if allowed is None or requested > allowed:
            values[field] = requested
    return Limits.model_validate(values)
