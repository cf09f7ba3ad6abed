"""References and values in semantic rules: ``$path`` references, literals, numbers, days.

``"$<path>"`` is a dotted path into a lookup's result or the call's arguments; ``"$$x"`` is the
literal string ``"$x"``. Pure helpers shared by the semantic checks and the policy checks.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from keel.contracts import Check

MISSING: Any = object()
RELATIVE_DATE = re.compile(r"^([+-])(\d{1,5})d$")


def dig(root: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``root`` (list items by index), or ``MISSING``."""
    current = root
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def parse_day(value: Any) -> date | None:
    """The calendar day of an ISO date or date-time string, or None."""
    if isinstance(value, str):
        for parse in (date.fromisoformat, datetime.fromisoformat):
            try:
                parsed = parse(value.strip())
            except ValueError:
                continue
            return parsed.date() if isinstance(parsed, datetime) else parsed
    return None


def reference(value: Any) -> str | None:
    """The path of a ``"$path"`` reference, or None for a literal (``"$$x"`` is literal)."""
    if isinstance(value, str) and value.startswith("$") and not value.startswith("$$"):
        return value[1:]
    return None


def literal(value: Any) -> Any:
    return value[1:] if isinstance(value, str) and value.startswith("$$") else value


def argument_field(check: Check) -> str | None:
    return None if check.argument.startswith("$") else check.argument


def as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def plain(number: Decimal) -> str:
    """``42`` for 42.0, ``42.5`` for 42.50: bounds as a person would write them."""
    return f"{number.normalize():f}" if number == number.to_integral_value() else f"{number:f}"
