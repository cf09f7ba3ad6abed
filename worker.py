"""The Keel worker: the composition root.

Reads configuration from the environment (``keel.runtime.config``, ``keel.runtime.telemetry``),
builds every client once (Temporal, one shared HTTP client, MCP connections via temporalio-mcp, the
OpenTelemetry providers) and registers the workflow and the activity classes that receive
those clients. Run with ``python worker.py``. Logs are JSON lines on stderr (keel/logs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

import httpx2
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import Interceptor, Worker

from activities.approvers import ApproverKeyActivities
from activities.breaker import BreakerConfig
from activities.grants import GrantMinter
from activities.llm import LLMActivities, llm_breakers
from activities.mcp import ToolResultStamper, mcp_breakers, mcp_plugin
from activities.notify import NotifyActivities
from activities.profiles import ProfileActivities
from activities.providers.registry import ProviderRegistry
from activities.spend import SpendGuard
from keel.contracts.errors import KeelError
from keel.contracts.names import SEARCH_ATTRIBUTES
from keel.runtime.codec import data_converter
from keel.runtime.config import Settings
from keel.runtime.logs import configure_logging, get_logger
from keel.runtime.pricing import resolve_price
from keel.runtime.profiles import available_profiles, load_profile
from keel.runtime.spend import SpendStore, open_spend_store
from keel.runtime.store.content import ContentStore
from keel.runtime.store.open import open_content_store, verify_store
from keel.runtime.store.payloads import external_storage
from keel.runtime.telemetry import Telemetry
from workflows.agent.workflow import AgentWorkflow
from workflows.fallback.ticket import TicketFallback
from workflows.triage.workflow import RefundTriageWorkflow

SERVICE_NAME = "keel-worker"
log = get_logger("keel.worker")


async def connect(settings: Settings, telemetry: Telemetry | None = None) -> Client:
    """A Temporal client with Keel's data converter (pydantic models on the wire, encrypted
    when ``settings.codec_keys`` names a keyring: keel/runtime/codec.py; payloads over
    ``settings.payload_threshold`` in the content store ``settings.store``) and, with
    ``telemetry``, the tracing interceptor and the runtime whose metrics it exports."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.namespace,
        data_converter=data_converter(settings.codec_keys, external_storage(settings)),
        **(telemetry.connect_options() if telemetry is not None else {}),
    )


def check_profiles(settings: Settings) -> list[str]:
    """Problems the profiles on the search path would hit on this worker, as readable lines.

    Logged at start-up so a missing key or an unknown server is seen before the first run;
    the same checks run again per run in ``keel.profile.load``.
    """
    problems: list[str] = []
    for name in available_profiles(settings.profiles_path):
        try:
            profile = load_profile(name, settings.profiles_path)
        except KeelError as exc:
            problems.append(str(exc))
            continue
        try:
            resolve_price(profile.model)
        except KeelError as exc:
            problems.append(f"profile {name!r}: {exc}")
        for server in profile.servers:
            if server.name not in settings.mcp_servers:
                problems.append(
                    f"profile {name!r}: MCP server {server.name!r} is not configured"
                    f" (set KEEL_MCP_{server.name.upper()})"
                )
        key_env = profile.model.api_key_env or settings.llm_api_key_env
        if key_env and not os.environ.get(key_env):
            problems.append(f"profile {name!r}: environment variable {key_env} is not set")
        if profile.approvals.require_identity and not settings.approver_jwks:
            problems.append(
                f"profile {name!r}: approvals.require_identity needs KEEL_APPROVER_JWKS"
            )
    return problems


def content_store(settings: Settings) -> ContentStore | None:
    """The content store the activities keep the conversation and large tool results in
    (``KEEL_STORE``); None when it is empty: every model request then carries the whole
    conversation, as before the store existed."""
    return open_content_store(settings) if settings.store else None


def tool_results(
    settings: Settings, breakers: BreakerConfig, telemetry: Telemetry, store: ContentStore | None
) -> ToolResultStamper:
    """The MCP interceptor: circuits, stamps, observation, approval grants, stored results."""
    return ToolResultStamper(
        mcp_breakers(breakers),
        telemetry=telemetry,
        servers=settings.mcp_servers,
        grants=GrantMinter.from_settings(settings),
        store=store,
    )


def build_worker(
    client: Client,
    settings: Settings,
    http: httpx2.AsyncClient,
    *,
    telemetry: Telemetry | None = None,
    max_cached_workflows: int | None = None,
    spend: SpendStore | None = None,
) -> Worker:
    """The worker with every registration; clients are built once by the caller.

    The circuit breakers (one registry per dependency kind, settings from
    ``KEEL_BREAKER_*``) live as long as the worker: they are per-process health state.
    A bad breaker setting raises ConfigError here, before the worker polls.

    ``telemetry`` receives the activities' spans and metrics. Its tracing interceptor belongs
    on the client (``connect``), which gives the worker client → workflow → activity span
    links; on a client without it, it is added to this worker alone. ``max_cached_workflows``
    (Temporal's default when None) set to 0 makes every workflow task replay the history.
    """
    telemetry = telemetry or Telemetry.disabled()
    breaker_config = BreakerConfig.from_env()
    log.info(
        "circuit breakers",
        failure_threshold=breaker_config.failure_threshold,
        cooldown_seconds=breaker_config.cooldown_seconds,
    )
    store = content_store(settings)
    llm = LLMActivities(
        ProviderRegistry.over(http),
        llm_breakers(breaker_config),
        telemetry=telemetry,
        store=store,
        spend=SpendGuard(spend, http) if spend is not None else None,  # the spend ledger
    )
    profiles = ProfileActivities(settings, http)
    notify = NotifyActivities(http)
    approvers = ApproverKeyActivities(settings, http)
    interceptors: list[Interceptor] = []
    tracing = telemetry.interceptor()
    if tracing is not None and not any(
        isinstance(i, TracingInterceptor) for i in client.config()["interceptors"]
    ):
        interceptors.append(tracing)
    interceptors.append(tool_results(settings, breaker_config, telemetry, store))
    options: dict[str, Any] = (
        {} if max_cached_workflows is None else {"max_cached_workflows": max_cached_workflows}
    )
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[AgentWorkflow, RefundTriageWorkflow, TicketFallback],
        activities=[llm.chat, profiles.load, notify.webhook, approvers.load],
        plugins=[mcp_plugin(settings)],
        interceptors=interceptors,
        max_concurrent_activities=50,
        **options,
    )


async def missing_search_attributes(client: Client) -> list[str]:
    """Keel's search attributes that the namespace does not define.

    A workflow that upserts an undefined attribute fails every workflow task (the run would
    hang), so the worker refuses to start instead, with the command that fixes it.
    """
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    defined = set(response.custom_attributes) | set(response.system_attributes)
    return [name for name in SEARCH_ATTRIBUTES if name not in defined]


async def run_worker(
    settings: Settings, stop: asyncio.Event, telemetry: Telemetry | None = None
) -> None:
    telemetry = telemetry or Telemetry.disabled()
    try:
        async with telemetry.running():
            await _serve(settings, stop, telemetry)
    finally:
        telemetry.shutdown()


async def _serve(settings: Settings, stop: asyncio.Event, telemetry: Telemetry) -> None:
    # A store that cannot be used fails here with one line, not at the first large payload.
    store = await verify_store(settings)
    client = await connect(settings, telemetry)
    missing = await missing_search_attributes(client)
    if missing:
        fix = "; ".join(
            f"temporal operator search-attribute create --name {name} --type Keyword"
            f" --namespace {settings.namespace}"
            for name in missing
        )
        raise KeelError(
            f"namespace {settings.namespace!r} does not define search attribute(s)"
            f" {', '.join(missing)}; register them first: {fix}"
        )
    # Temporal owns retries, so the shared HTTP client never retries on its own.
    async with httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(retries=0)) as http:
        spend = await open_spend_store(settings.spend_url)
        worker = build_worker(client, settings, http, telemetry=telemetry, spend=spend)
        for problem in check_profiles(settings):
            log.warning("profile problem: runs of this profile will fail at start", problem=problem)
        async with worker:
            # keel/stack.py waits for the text "worker ready" in this process's log.
            log.info(
                "worker ready",
                temporal=settings.temporal_address,
                task_queue=settings.task_queue,
                llm=settings.llm_base_url,
                mcp={n: t.describe() for n, t in settings.mcp_servers.items()},
                encrypted_payloads=settings.codec_keys is not None,
                store=store,
                payload_threshold=settings.payload_threshold,
                spend=spend.describe(),
                tracing=telemetry.tracing,
                metrics=telemetry.metering,
                prometheus=(
                    f"http://{telemetry.prometheus.host}:{telemetry.prometheus.port}/metrics"
                    if telemetry.prometheus is not None
                    else None
                ),
            )
            await stop.wait()


def main() -> int:
    configure_logging("worker")
    try:
        settings = Settings.from_env()
        telemetry = Telemetry.from_env(SERVICE_NAME, core_logs=True)
    except KeelError as exc:
        print(f"keel worker: {exc}", file=sys.stderr)
        return 2

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop, telemetry)

    try:
        asyncio.run(_main())
    except KeelError as exc:
        print(f"keel worker: {exc}", file=sys.stderr)
        return 2
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
    os._exit(code)
