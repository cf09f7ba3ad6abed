"""The unit tier starts no process: ``make test-unit`` must stay fast and need nothing running.

Every unit test runs with process creation disabled (``subprocess`` — and so
``asyncio.create_subprocess_exec`` and ``multiprocessing``, which build on it — ``os.fork``,
``os.posix_spawn``, ``os.system``): a test that tries fails with a message saying where it
belongs. The session ``stack`` and ``client`` fixtures of tests/conftest.py are overridden
here, so a unit test that asks for the real stack fails instead of starting it.
"""

from __future__ import annotations

import _posixsubprocess
import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

from keel.runtime.keys import LocalKeys, ensure_local_keys

MOVE = "a unit test starts no process: this test belongs in tests/integration"


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError(f"{what} called: {MOVE}")

    return refuse


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch every way this process can start another one to raise."""
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse("subprocess.Popen"))
    monkeypatch.setattr(_posixsubprocess, "fork_exec", _refuse("_posixsubprocess.fork_exec"))
    monkeypatch.setattr(asyncio, "create_subprocess_exec", _refuse("create_subprocess_exec"))
    monkeypatch.setattr(asyncio, "create_subprocess_shell", _refuse("create_subprocess_shell"))
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse(f"os.{name}"))


@pytest.fixture(scope="session")
def stack() -> NoReturn:
    raise AssertionError(f"the session stack was requested: {MOVE}")


@pytest.fixture(scope="session")
def client() -> NoReturn:
    raise AssertionError(f"the Temporal client of the session stack was requested: {MOVE}")


@pytest.fixture
def keys(tmp_path: Path) -> LocalKeys:
    """A fresh key directory (keel/runtime/keys.py: signing key, JWKS, codec keyring)."""
    return ensure_local_keys(tmp_path / "keys")
