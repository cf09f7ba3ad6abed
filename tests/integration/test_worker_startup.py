"""The worker's start-up checks, against a real (second, bare) Temporal dev server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel import procs
from keel.stack import Stack, temporal_binary
from tests.conftest import REPO


@pytest.fixture(scope="module")
def bare_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dev server with no Keel search attributes registered (in-memory, headless)."""
    port = procs.free_port()
    log = Path(tmp_path_factory.mktemp("bare")) / "temporal.log"
    child = procs.spawn(
        "bare-temporal",
        [str(temporal_binary()), "server", "start-dev", "--ip", "127.0.0.1",
         "--port", str(port), "--headless", "--log-level", "warn"],
        log,
    )  # fmt: skip
    try:
        procs.wait_tcp(child, "127.0.0.1", port, timeout=60)
        yield f"127.0.0.1:{port}"
    finally:
        procs.stop(child)


def test_worker_refuses_a_namespace_without_keel_search_attributes(bare_temporal: str) -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "worker.py")],
        env={"PATH": "/usr/bin:/bin", "TEMPORAL_ADDRESS": bare_temporal},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 2
    assert "does not define search attribute(s) KeelState, KeelFailureClass" in out.stderr
    assert "temporal operator search-attribute create --name KeelState" in out.stderr
    assert "Traceback" not in out.stderr


async def test_the_stack_namespace_has_them(stack: Stack) -> None:
    from temporalio.client import Client

    from worker import missing_search_attributes

    client = await Client.connect(stack.config.temporal_address)
    assert await missing_search_attributes(client) == []
