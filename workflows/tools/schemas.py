"""Keel's JSON Schema dialect for tool inputs, and errors rendered so a model can fix them.

The dialect is Draft 2020-12 with two keywords made exact:

* ``multipleOf`` compares decimal values. jsonschema divides floats, so ``0.07`` fails
  ``multipleOf: 0.01`` (0.07 / 0.01 = 7.000000000000001) and a model gets refused for a
  perfectly good amount. Here both sides are read as the decimal literal the JSON text had
  (``Decimal(str(x))``) and compared as exact fractions.
* ``pattern`` anchors ``$`` at the very end, as ECMA-262 (which JSON Schema specifies) and the
  servers' pydantic validators do. Python's ``re`` also lets ``$`` match before a final
  newline, so ``"ORD-1042\n"`` would pass Keel and then be refused by the server.

jsonschema's messages are written for developers (``'5' is not of type 'integer'``); a model
needs the field, what is wrong with the value it sent and a concrete way to fix it
(``limit: expected integer, got string "5" — send 5 as a JSON number, without quotes``).
Everything here is pure: no I/O, no clock, no randomness (it runs inside workflows).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from jsonschema.protocols import Validator as SchemaValidator

from keel.contracts.errors import closest

MAX_ISSUES = 10
_EXAMPLE = re.compile(r"e\.g\.\s*(\S+)")
# Best first: shallow before deep, then the keywords that say the most about the call.
_KEYWORD_RANK = {"required": 0, "additionalProperties": 1, "type": 2, "anyOf": 4, "oneOf": 4}


def _multiple_of(
    validator: SchemaValidator, divisor: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "number") and not is_multiple(instance, divisor):
        yield ValidationError(f"{instance!r} is not a multiple of {divisor!r}")


def _pattern(
    validator: SchemaValidator, pattern: str, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


ToolInputValidator = validators.extend(
    Draft202012Validator, {"multipleOf": _multiple_of, "pattern": _pattern}
)


def is_multiple(value: Any, divisor: Any) -> bool:
    """Exact: ``value`` / ``divisor`` is an integer, reading both as decimal literals."""
    try:
        quotient = Fraction(Decimal(str(value))) / Fraction(Decimal(str(divisor)))
    except (ArithmeticError, ValueError):  # NaN, infinity, zero divisor
        return False
    return quotient.denominator == 1


@lru_cache(maxsize=512)
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """Compile ``pattern`` with ``$`` (outside character classes) meaning end of string."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            start = i + 1 + (pattern[i + 1 : i + 2] == "^")
            if pattern[start : start + 1] == "]":  # a leading ] is a literal
                out.append(pattern[i : start + 1])
                i = start + 1
                continue
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return re.compile("".join(out))


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why ``schema`` is not a usable tool input schema, or None if it is."""
    try:
        ToolInputValidator.check_schema(schema)
    except SchemaError as exc:
        where = field_path(exc.absolute_path) if exc.absolute_path else "(root)"
        return f"{where}: {exc.message}"
    return None


@dataclass(frozen=True)
class Issue:
    """One thing wrong with a tool call: which field, which rule, what is wrong, how to fix it."""

    field: str | None
    keyword: str
    problem: str
    fix: str

    def text(self) -> str:
        """``field: problem — fix``, the one-line form used in logs and step records."""
        prefix = f"{self.field}: " if self.field else ""
        return f"{prefix}{self.problem} — {self.fix}"


def schema_issues(errors: Iterable[ValidationError]) -> list[Issue]:
    """Every error as issues, best first, without duplicates, at most ``MAX_ISSUES``."""
    ranked = sorted(errors, key=lambda e: (len(e.path), _KEYWORD_RANK.get(str(e.validator), 3)))
    issues: list[Issue] = []
    for error in ranked:
        for issue in _issues(error):
            if issue not in issues:
                issues.append(issue)
    if len(issues) > MAX_ISSUES:
        rest = len(issues) - MAX_ISSUES + 1
        issues = [
            *issues[: MAX_ISSUES - 1],
            Issue(None, "more", f"and {rest} more problem(s)", "fix the ones above first"),
        ]
    return issues


def field_path(parts: Iterable[Any]) -> str:
    """``items[0].sku`` style path of a value inside the arguments."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(arguments)"


def show(value: Any, limit: int = 60) -> str:
    """A short, readable rendering of a value the model sent (strings in single quotes)."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return _limit(text, limit)


def _json(value: Any, limit: int = 60) -> str:
    """The value as JSON text (``"5"`` for a string): used where the JSON type matters."""
    return _limit(json.dumps(value, ensure_ascii=False), limit)


def _limit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_type(value: Any) -> str:
    """The JSON type name of a parsed JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    for kind, name in ((float, "number"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def describe_schema(schema: Any) -> str:
    """What a (sub)schema accepts, in a few words: ``string``, ``integer or null``, …"""
    if not isinstance(schema, dict):
        return "any value"
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return f"exactly {show(schema['const'])}"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(describe_schema(s) for s in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    return str(kind) if kind else "any value"


def _issues(error: ValidationError) -> list[Issue]:
    keyword = str(error.validator)
    if keyword == "required":
        return _required(error)
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        return _additional(error)
    if keyword in ("anyOf", "oneOf") and error.context:
        return [_alternatives(error)]
    field = field_path(error.absolute_path)
    problem, fix = _explain(keyword, error.validator_value, error.instance, _description(error))
    return [Issue(field, keyword, problem, fix)]


def _required(error: ValidationError) -> list[Issue]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    properties = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    base = list(error.absolute_path)
    issues = []
    for name in error.validator_value:
        if name in instance:
            continue
        sub = properties.get(name, {})
        detail = describe_schema(sub)
        if isinstance(sub, dict) and sub.get("description"):
            detail += f": {sub['description']}"
        fix = f"add it ({detail})"
        issues.append(Issue(field_path([*base, name]), "required", "required but missing", fix))
    return issues


def _additional(error: ValidationError) -> list[Issue]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    allowed = list(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    issues = []
    for name in error.instance:
        if name in allowed or any(re.search(p, name) for p in patterns):
            continue
        hints = closest(name, allowed, limit=1)
        fix = f"remove it (did you mean {hints[0]!r}?)" if hints else "remove it"
        fix += f"; allowed: {', '.join(allowed) or 'none'}"
        path = field_path([*error.absolute_path, name])
        issues.append(Issue(path, "additionalProperties", "not an accepted argument", fix))
    return issues


def _alternatives(error: ValidationError) -> Issue:
    """anyOf/oneOf: explain the branch whose type the value has, else list what is accepted."""
    same_type = [e for e in error.context or () if _branch(e) not in _mistyped(error)]
    if same_type:
        return _issues(best_match(same_type) or same_type[0])[0]
    accepted = describe_schema(error.schema)
    problem = f"expected {accepted}, got {json_type(error.instance)} {_json(error.instance)}"
    return Issue(field_path(error.absolute_path), str(error.validator), problem, f"send {accepted}")


def _branch(error: ValidationError) -> Any:
    return error.relative_schema_path[0] if error.relative_schema_path else None


def _mistyped(error: ValidationError) -> set[Any]:
    """anyOf/oneOf branches whose ``type`` the value does not have."""
    return {
        _branch(e) for e in error.context or () if e.validator == "type" and not e.relative_path
    }


def _description(error: ValidationError) -> str:
    """The nearest ``description`` (anyOf branches carry none; their parent does)."""
    node: ValidationError | None = error
    while node is not None:
        if isinstance(node.schema, dict) and node.schema.get("description"):
            return str(node.schema["description"])
        node = node.parent
    return ""


def _explain(keyword: str, rule: Any, value: Any, description: str) -> tuple[str, str]:
    """(problem, fix) for one failed keyword."""
    if keyword == "type":
        return _type_problem(rule, value, description)
    if keyword == "pattern":
        match = _EXAMPLE.search(description)
        example = match.group(1).rstrip(".,;)") if match else None
        fix = f"expected e.g. {example}" if example else "send a string matching that pattern"
        return f"{show(value)} does not match '{rule}'", fix
    if keyword == "enum":
        hints = closest(str(value), [str(v) for v in rule], limit=1)
        fix = "use one of: " + ", ".join(str(v) for v in rule)
        if hints:
            fix += f" (did you mean {hints[0]!r}?)"
        return f"{show(value)} is not one of {_limit(repr(list(rule)), 200)}", fix
    if keyword == "const":
        return f"{show(value)} is not {show(rule)}", f"use {show(rule)}"
    if keyword == "multipleOf":
        return f"{show(value)} is not a multiple of {show(rule)}", _multiple_fix(value, rule)
    if keyword in _BOUNDS:
        problem, fix = _BOUNDS[keyword]
        return problem.format(v=show(value), b=show(rule)), fix.format(b=show(rule))
    if keyword in ("minLength", "maxLength") and isinstance(value, str):
        if keyword == "minLength":
            return f"{show(value)} is shorter than {rule} character(s)", (
                f"send at least {rule} character(s)"
            )
        return f"{len(value)} characters, more than the maximum {rule}", (
            f"shorten it to at most {rule} characters"
        )
    return _generic(keyword, rule, value, description)


_BOUNDS = {
    "minimum": ("{v} is less than the minimum {b}", "use {b} or more"),
    "maximum": ("{v} is more than the maximum {b}", "use at most {b}"),
    "exclusiveMinimum": ("{v} must be greater than {b}", "use a value above {b}"),
    "exclusiveMaximum": ("{v} must be less than {b}", "use a value below {b}"),
}


def _generic(keyword: str, rule: Any, value: Any, description: str) -> tuple[str, str]:
    messages = {
        "minItems": (f"{_size(value)} item(s), fewer than {rule}", f"send at least {rule}"),
        "maxItems": (f"{_size(value)} item(s), more than {rule}", f"send at most {rule}"),
        "uniqueItems": ("items are not unique", "remove the duplicates"),
        "minProperties": (f"fewer than {rule} properties", f"send at least {rule}"),
        "maxProperties": (f"more than {rule} properties", f"send at most {rule}"),
    }
    if keyword in messages:
        return messages[keyword]
    fix = description or "see the tool's input schema"
    return f"{show(value)} is not valid ({keyword}: {show(rule)})", fix


def _size(value: Any) -> int:
    return len(value) if isinstance(value, Sequence | dict) else 0


def _type_problem(rule: Any, value: Any, description: str) -> tuple[str, str]:
    expected = " or ".join(rule) if isinstance(rule, list) else str(rule)
    kinds = set(rule) if isinstance(rule, list) else {rule}
    problem = f"expected {expected}, got {json_type(value)} {_json(value)}"
    if isinstance(value, str) and kinds & {"number", "integer"} and _is_number(value):
        return problem, f"send {value.strip()} as a JSON number, without quotes"
    if isinstance(value, str) and "boolean" in kinds and value.strip() in ("true", "false"):
        return problem, f"send {value.strip()} without quotes"
    if "string" in kinds and isinstance(value, int | float) and not isinstance(value, bool):
        return problem, f'send it as a string in quotes, e.g. "{value}"'
    fix = f"send {expected}" + (f" ({description})" if description else "")
    return problem, fix


def _is_number(text: str) -> bool:
    try:
        return Decimal(text.strip()).is_finite()
    except InvalidOperation:
        return False


def _multiple_fix(value: Any, rule: Any) -> str:
    try:
        step = Decimal(str(rule))
        nearest = (Decimal(str(value)) / step).quantize(Decimal(1), ROUND_HALF_UP) * step
    except (InvalidOperation, ValueError):
        return f"use a multiple of {show(rule)}"
    decimals = -step.normalize().as_tuple().exponent  # type: ignore[operator]
    if step.normalize() == Decimal(1).scaleb(-decimals) and decimals > 0:
        return f"use at most {decimals} decimals, e.g. {nearest:.{decimals}f}"
    if step == 1:
        return f"use a whole number, e.g. {nearest:.0f}"
    return f"use a multiple of {show(rule)}, e.g. {nearest.normalize():f}"
