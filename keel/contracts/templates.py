"""Progress-template parsing: which placeholders a template reads, and whether it is valid."""

from __future__ import annotations

import string
from typing import Any


def template_fields(template: str) -> list[str]:
    """The placeholder names of a progress template; ``ValueError`` says what is wrong with it.

    Placeholders are plain names (``{order_id}``) with an optional format spec
    (``{amount:.2f}``); positional fields, attribute or index access and nested fields are
    refused, so a template can only read the values Keel hands it.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {exc}") from None
    names: list[str] = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(
                f"template {template!r}: placeholder {{{name}}} must be a plain name such as"
                " {order_id} (no positions, attributes or indexes)"
            )
        if conversion not in (None, "s", "r"):
            raise ValueError(f"template {template!r}: unknown conversion !{conversion}")
        if spec and "{" in spec:
            raise ValueError(f"template {template!r}: nested placeholders are not supported")
        if spec and not (_spec_fits(spec, 0.0) or _spec_fits(spec, "")):
            raise ValueError(
                f"template {template!r}: format spec :{spec} fits neither numbers nor text"
            )
        names.append(name)
    return names


def _spec_fits(spec: str, sample: Any) -> bool:
    try:
        format(sample, spec)
    except (ValueError, TypeError):
        return False
    return True
