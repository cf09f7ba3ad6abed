"""The words of a run's live progress: the profile's per-tool templates and generic fallbacks.

Pure functions (no I/O, no clock), used by the workflow's reporter. A tool call reads
"looking up order ORD-1042…" when its profile has a ``call`` template and
"calling get_order(order_id=ORD-1042)" when not; a template that cannot be filled for one
call (an optional argument left out, a result without the field) falls back to the generic
text instead of failing the run: progress is for people, never a reason to stop work.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from keel.contracts import ProgressTemplates, ToolPolicy, ToolSpec, template_fields
from keel.contracts.json_text import loads_bounded

MESSAGE_WIDTH = 200
VALUE_WIDTH = 40
ARGUMENTS_WIDTH = 120


def shorten(text: str, width: int = MESSAGE_WIDTH) -> str:
    """One line of at most ``width`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _scalar(value: Any) -> Any:
    """A value a template may format: numbers and strings as they are, the rest as JSON."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def arguments_text(arguments: Mapping[str, Any], width: int = ARGUMENTS_WIDTH) -> str:
    """``order_id=ORD-1042, amount=42.0``: each value shortened, the whole line bounded."""
    parts = []
    for name, value in arguments.items():
        shown = value if isinstance(value, str) else _scalar(value)
        parts.append(f"{name}={shorten(str(shown), VALUE_WIDTH)}")
    return shorten(", ".join(parts), width)


def render(template: str | None, values: Mapping[str, Any]) -> str | None:
    """``template`` filled from ``values``, or None when it cannot be filled for them."""
    if template is None:
        return None
    try:
        return shorten(template.format_map({k: _scalar(v) for k, v in values.items()}))
    except (KeyError, ValueError, TypeError, IndexError):
        return None


def result_fields(data: Any) -> dict[str, Any]:
    """What a ``done`` template may use of a tool result (parsed JSON).

    A list result gives ``count``; an object gives its top-level fields, ``<field>_count``
    for each list-valued field and ``count`` when exactly one field is a list (or the object
    has a numeric ``count`` of its own).
    """
    if isinstance(data, list):
        return {"count": len(data)}
    if not isinstance(data, dict):
        return {}
    fields: dict[str, Any] = dict(data)
    lists = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    for name, length in lists.items():
        fields.setdefault(f"{name}_count", length)
    if "count" not in fields and len(lists) == 1:
        fields["count"] = next(iter(lists.values()))
    return fields


def parse_result(text: str, structured: Any = None) -> Any:
    """The tool result as data: its structured content, else its text parsed as JSON."""
    if structured is not None:
        return structured
    try:
        return loads_bounded(text)
    except (ValueError, TypeError):
        return None


def _templates(policy: ToolPolicy | None) -> ProgressTemplates:
    return policy.progress if policy is not None and policy.progress else ProgressTemplates()


def call_text(tool: str, arguments: Mapping[str, Any], policy: ToolPolicy | None) -> str:
    """What a person reads when the call starts."""
    values = {"tool": tool, **arguments}
    return render(_templates(policy).call, values) or shorten(
        f"calling {tool}({arguments_text(arguments)})"
    )


def approval_text(tool: str, arguments: Mapping[str, Any], policy: ToolPolicy | None) -> str:
    """What the call is, for ``waiting for approval: …``."""
    values = {"tool": tool, **arguments}
    return render(_templates(policy).approval, values) or shorten(
        f"{tool}({arguments_text(arguments)})"
    )


def done_text(
    tool: str,
    arguments: Mapping[str, Any],
    policy: ToolPolicy | None,
    *,
    ok: bool,
    text: str,
    data: Any = None,
) -> str:
    """What a person reads when the call has finished (``ok``) or returned an error."""
    if not ok:
        first = text.strip().splitlines()[0] if text.strip() else "error"
        return shorten(f"{tool} failed: {shorten(first, 120)}")
    values = {"tool": tool, **arguments, **result_fields(data)}
    return render(_templates(policy).done, values) or f"{tool} done"


def template_problems(policies: Mapping[str, ToolPolicy], catalog: list[ToolSpec]) -> list[str]:
    """Placeholders of ``call`` / ``approval`` templates that name no argument of the tool.

    Checked once at the start of a run, when the tools' input schemas are known (the profile
    loader has already checked each template's syntax). ``done`` templates may also name
    result fields, which no schema describes, so only their syntax is checked.
    """
    problems: list[str] = []
    schemas = {spec.name: spec.input_schema for spec in catalog}
    for name, policy in policies.items():
        if policy.progress is None or name not in schemas:
            continue
        properties = schemas[name].get("properties")
        if not isinstance(properties, dict):
            continue
        known = {"tool", *properties}
        for which in ("call", "approval"):
            template = getattr(policy.progress, which)
            if template is None:
                continue
            unknown = [f for f in template_fields(template) if f not in known]
            if unknown:
                problems.append(
                    f"tools.{name}.progress.{which}: {{{unknown[0]}}} names no argument of"
                    f" {name} (have: {', '.join(sorted(properties))})"
                )
    return problems
