"""Fixtures of the ledger's unit tests: a fake clock and the toy server on a temp file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.mcp_servers.shared.ledger.toy import FakeClock, Toy


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def toy(tmp_path: Path, clock: FakeClock) -> Toy:
    return Toy(tmp_path / "toy.db", clock)
