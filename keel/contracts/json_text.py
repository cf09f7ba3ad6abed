"""JSON text from a model or a tool, parsed without letting its shape break the workflow.

``json.loads`` recurses once per nesting level: a model's arguments or a tool's result nested a
few thousand levels deep raise ``RecursionError``, which in workflow code fails the workflow
task again and again until the wall clock ends the run. Nothing Keel's runs use is nested
deeper than ``MAX_DEPTH``; deeper text is refused *before* it is parsed, by a linear scan, so
no later step (schema validation, re-serialisation, templates) recurses on it either.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays accepted in JSON text from a model or a tool."""


class TooDeep(ValueError):
    """JSON text nested deeper than ``MAX_DEPTH``; ``str()`` is one readable line."""


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """How deep ``text``'s brackets nest outside strings, counting up to ``limit + 1``."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif char in "]}":
            depth -= 1
    return deepest


def loads_bounded(text: str, **options: Any) -> Any:
    """``json.loads(text)``, refusing text nested deeper than ``MAX_DEPTH`` with ``TooDeep``
    (a ``ValueError``). Other errors are ``json.loads``' own."""
    if nesting_depth(text) > MAX_DEPTH:
        raise TooDeep(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, **options)
    except RecursionError:  # a custom decoder hook may still recurse: same answer
        raise TooDeep(f"nested deeper than {MAX_DEPTH} levels") from None
