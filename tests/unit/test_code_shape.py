"""The shape of the product code: no function over 60 lines, no module over 400.

ruff has the complexity ceiling (C901, PLR09xx in pyproject.toml) but no length rule, and
length is what makes a function or a module hard to review even when it is simple. This walks
the AST of every product module (the test suite itself is not held to it) and names each
offender with its size, so a failure says exactly what to split.

An exception goes in ALLOWED with the reason it is not split: the entry is checked too (it
must still exist and still be over the limit), so a stale exception fails and gets removed.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("keel", "workflows", "activities", "mcp_servers", "simulator", "bench", "worker.py")
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400

# "path" for a module, "path::function" (qualified: Class.method, outer.inner) for a function,
# each with the reason it may stay over the limit.
ALLOWED: dict[str, str] = {}


def product_modules() -> Iterator[Path]:
    for name in PRODUCT:
        path = REPO / name
        if path.is_file():
            yield path
        else:
            yield from sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified name, lines from ``def`` to the last line) of every function, nested ones
    too; a nested function's lines also count towards the function around it."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
            yield name, (node.end_lineno or node.lineno) - node.lineno + 1
            yield from functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


@functools.cache
def oversized() -> dict[str, str]:
    """Every module and function over its limit, with its size."""
    found: dict[str, str] = {}
    for path in product_modules():
        relative = path.relative_to(REPO).as_posix()
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found[relative] = f"module of {lines} lines (limit {MAX_MODULE_LINES})"
        for name, length in functions(ast.parse(source, filename=relative)):
            if length > MAX_FUNCTION_LINES:
                found[f"{relative}::{name}"] = (
                    f"function of {length} lines (limit {MAX_FUNCTION_LINES})"
                )
    return found


def test_no_function_or_module_is_over_its_limit() -> None:
    offenders = {key: size for key, size in oversized().items() if key not in ALLOWED}
    report = "\n".join(f"  {key}: {size}" for key, size in sorted(offenders.items()))
    assert not offenders, f"split these (or add them to ALLOWED with a reason):\n{report}"


def test_each_exception_is_still_needed() -> None:
    """An allow-list entry needs its reason, and goes once it is within its limit (the list is
    empty today; this keeps it honest when an entry is added)."""
    unexplained = [key for key, reason in ALLOWED.items() if not reason.strip()]
    stale = [key for key in ALLOWED if key not in oversized()]
    assert not unexplained, f"an exception needs its reason: {unexplained}"
    assert not stale, f"within their limits now, remove from ALLOWED: {stale}"


def test_the_limits_catch_an_oversized_function() -> None:
    long_body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    tree = ast.parse(f"def big():\n{long_body}")
    assert dict(functions(tree))["big"] == MAX_FUNCTION_LINES + 1


def test_the_walk_sees_nested_and_class_functions() -> None:
    tree = ast.parse(
        "class A:\n    def m(self):\n        def inner():\n            pass\n"
        "async def f():\n    pass\n"
    )
    assert dict(functions(tree)) == {"A.m": 3, "A.m.inner": 2, "f": 2}
