"""The Keel worker: the composition root.

Reads configuration from the environment (keel.config.Settings), builds every client once
(Temporal, one shared HTTP client, MCP connections via temporalio-mcp) and registers the
workflow and the activity classes that receive those clients. Run with ``python worker.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import httpx2
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.llm import LLMActivities
from activities.mcp import ToolResultStamper, build_mcp_plugin
from activities.profiles import ProfileActivities
from activities.providers.openai_compat import OpenAICompatProvider
from keel.config import Settings
from keel.errors import KeelError
from workflows.agent import AgentWorkflow

log = logging.getLogger("keel.worker")


async def connect(settings: Settings) -> Client:
    """A Temporal client with Keel's data converter (pydantic models on the wire)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
    )


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    client = await connect(settings)
    # Temporal owns retries, so the shared HTTP client never retries on its own.
    async with httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(retries=0)) as http:
        llm = LLMActivities(OpenAICompatProvider(http))
        profiles = ProfileActivities(settings, http)
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[AgentWorkflow],
            activities=[llm.chat, profiles.load],
            plugins=[build_mcp_plugin(settings.mcp_servers, settings.mcp_read_timeout_seconds)],
            interceptors=[ToolResultStamper()],
            max_concurrent_activities=50,
        )
        servers = ", ".join(f"{n}={t.describe()}" for n, t in settings.mcp_servers.items())
        log.info(
            "worker ready: temporal=%s task_queue=%s llm=%s mcp=[%s]",
            settings.temporal_address,
            settings.task_queue,
            settings.llm_base_url,
            servers,
        )
        async with worker:
            await stop.wait()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings.from_env()
    except KeelError as exc:
        print(f"keel worker: {exc}", file=sys.stderr)
        return 2

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    try:
        asyncio.run(_main())
    except (OSError, RuntimeError) as exc:
        print(f"keel worker: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Work has been flushed; skip interpreter teardown, which can crash after the Temporal
    # client was used (a known SDK issue, see docs/operations.md).
    import os

    os._exit(code)
