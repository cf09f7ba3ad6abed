"""Typed, readable errors for user mistakes (bad config, bad input, unknown names).

A user mistake must produce one clear message naming the field, never a traceback. These
exceptions carry that message; the CLI prints ``str(exc)`` and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import ValidationError


class KeelError(Exception):
    """Base of Keel's user-facing errors."""


class ConfigError(KeelError):
    """Configuration (environment, profile, server map) is missing or invalid."""


class ProfileError(ConfigError):
    """A profile cannot be found or does not validate."""


class InputError(KeelError):
    """Workflow input or a CLI argument is invalid."""


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """Render pydantic errors as ``source: field.path: message`` lines."""
    lines = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(part) for part in err["loc"]) or "(root)"
        lines.append(f"{source}: {path}: {err['msg']}")
    return "\n".join(lines)


def closest(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Names from ``candidates`` that look like ``name`` (for "did you mean" hints)."""
    return difflib.get_close_matches(name, list(candidates), n=limit, cutoff=0.5)


def names_hint(name: str, candidates: Iterable[str], noun: str = "names", show: int = 5) -> str:
    """What to tell a user who asked for an unknown ``name``, bounded however many exist.

    A few candidates are all listed (``available: a, b``); of many, only the closest few
    (``closest of 812 profiles: support, support-eu``), so the message stays one short line.
    Ends with ``(did you mean 'x'?)`` when one is close.
    """
    known = list(candidates)
    near = closest(name, known, limit=show)
    if len(known) <= show:
        listed = f"available: {', '.join(known) or '(none)'}"
    elif near:
        listed = f"closest of {len(known)} {noun}: {', '.join(near)}"
    else:
        listed = f"none of the {len(known)} {noun} is close (e.g. {', '.join(known[:show])}, …)"
    return listed + (f" (did you mean {near[0]!r}?)" if near else "")
