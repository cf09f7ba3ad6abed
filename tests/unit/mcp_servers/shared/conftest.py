"""Fixtures of the servers' shared-code tests."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from mcp_servers.shared.logs import configure_logging


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The servers' JSON log lines, written to a StringIO; the root logger and structlog are
    restored afterwards."""
    monkeypatch.delenv("KEEL_LOG_FORMAT", raising=False)
    root = logging.getLogger()
    level = root.level
    out = io.StringIO()
    handler = configure_logging("support-desk", level="info", stream=out)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()
