"""The guard of tests/unit/conftest.py holds: a unit test can neither start a process nor the
session stack, so the tier stays honest (fast, and nothing running needed)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys

import pytest


def test_subprocesses_are_refused() -> None:
    with pytest.raises(AssertionError, match="belongs in tests/integration"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
    with pytest.raises(AssertionError, match="belongs in tests/integration"):
        os.system("true")
    with pytest.raises(AssertionError, match="belongs in tests/integration"):
        multiprocessing.get_context("spawn").Process(target=print).start()


async def test_asyncio_subprocesses_are_refused() -> None:
    with pytest.raises(AssertionError, match="belongs in tests/integration"):
        await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")


@pytest.mark.parametrize("fixture", ["stack", "client"])
def test_the_session_stack_is_never_started(request: pytest.FixtureRequest, fixture: str) -> None:
    with pytest.raises(AssertionError, match="belongs in tests/integration"):
        request.getfixturevalue(fixture)
