"""The public API of ``keel``: every exported name resolves, ``dir`` lists them, the names mypy
sees are the names run time gives, and importing ``keel`` loads nothing else.

The "loads nothing" check runs in this process: other tests have long imported Keel (and
temporalio), so it takes every ``keel`` module out of ``sys.modules``, imports afresh, looks at
what was added, and puts the originals back. tests/integration/test_public_api.py checks the
same in a fresh interpreter, where temporalio is not loaded yet.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import keel

EXPORTS: dict[str, str] = keel._EXPORTS


@pytest.fixture
def fresh_keel() -> Iterator[set[str]]:
    """Remove every ``keel`` module; yield the module names present; restore the originals."""
    saved = {name: module for name, module in sys.modules.items() if _is_keel(name)}
    for name in saved:
        del sys.modules[name]
    try:
        yield set(sys.modules)
    finally:
        for name in [name for name in sys.modules if _is_keel(name)]:
            del sys.modules[name]
        sys.modules.update(saved)


def _is_keel(name: str) -> bool:
    return name == "keel" or name.startswith("keel.")


def test_all_lists_every_export_once() -> None:
    assert len(keel.__all__) == len(set(keel.__all__))
    assert set(keel.__all__) == set(EXPORTS)


@pytest.mark.parametrize("name", keel.__all__)
def test_every_public_name_is_the_object_of_its_module(name: str) -> None:
    defining = importlib.import_module(EXPORTS[name])

    assert getattr(keel, name) is getattr(defining, name)


def test_dir_lists_the_public_names() -> None:
    assert set(keel.__all__) <= set(dir(keel))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'models'"):
        _ = keel.models  # type: ignore[attr-defined]
    assert not hasattr(keel, "start_workflow")


def test_no_public_name_is_shadowed_by_a_submodule() -> None:
    """Importing ``keel.watch`` sets the attribute ``keel.watch`` to the module, whatever
    ``__getattr__`` gave before: an export of that name would change under its users."""
    submodules = {info.name for info in pkgutil.iter_modules(keel.__path__)}

    assert submodules
    assert not submodules & set(keel.__all__)


def test_the_type_checking_imports_match_the_exports() -> None:
    """mypy and IDEs read the TYPE_CHECKING block; run time reads _EXPORTS: they must agree."""
    tree = ast.parse(Path(keel.__file__ or "").read_text())
    seen: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                seen.update({alias.name: statement.module or "" for alias in statement.names})

    assert seen == EXPORTS


def test_importing_keel_loads_no_other_module(fresh_keel: set[str]) -> None:
    module: ModuleType = importlib.import_module("keel")

    assert set(sys.modules) - fresh_keel == {"keel"}
    assert module.WORKFLOW_TYPE == "AgentWorkflow"  # and a name still resolves on demand


def test_the_names_module_needs_only_the_contracts(fresh_keel: set[str]) -> None:
    """MCP servers import ``keel.contracts.names``; that must not pull in the client side."""
    importlib.import_module("keel.contracts.names")

    loaded = {name for name in set(sys.modules) - fresh_keel if _is_keel(name)}
    assert loaded
    assert all(
        name in ("keel", "keel.contracts") or name.startswith("keel.contracts.") for name in loaded
    )
