"""End-to-end tests of your own agents against a scripted model: ``keel.testing.LocalStack``.

An agent is a profile (which model, which tools, which limits) plus the model's behaviour.
Mocking either would test nothing Keel does, so this module starts the real thing for a test:
a Temporal dev server, the simulator (Keel's offline OpenAI-compatible model, replaying TOML
scenarios), the MCP servers and a worker, on free ports under a temporary directory, so it
runs beside ``make up`` and beside other tests::

    from keel.testing import LocalStack

    async def test_answers() -> None:
        async with LocalStack(profiles="tests/profiles", scenarios="tests/scenarios") as env:
            result = await env.run("my_agent", "Where is ORD-1043?")
        assert result.status == "completed"

Your profile directories come before the shipped ``profiles/``, your scenario files before
the bundled ``simulator/scenarios/`` (the first of a name wins), so a profile of yours can use
``sim/<your scenario>`` as its model. Starting a stack takes a few seconds: share one per test
session (a session-scoped fixture) rather than one per test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowHandle

from keel.client import build_input, connect, start_run
from keel.contracts import ApprovalRequest, LimitOverrides, Principal, RunResult
from keel.contracts.errors import ConfigError
from keel.contracts.names import QUERY_PENDING_APPROVALS, QUERY_STATUS
from keel.contracts.result import RunStatus
from keel.runtime.config import PROJECT_ROOT, Settings
from keel.stack import Stack, StackConfig

__all__ = ["LocalStack"]

SHIPPED_PROFILES = PROJECT_ROOT / "profiles"
BUNDLED_SCENARIOS = PROJECT_ROOT / "simulator" / "scenarios"
WAITING_STATES = ("running", "awaiting_guidance")
"""States in which a run may still come to ask for an approval."""

Paths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
T = TypeVar("T")


class LocalStack:
    """A whole Keel stack for the duration of an ``async with`` block.

    Inside the block, :attr:`client` is a Temporal client with Keel's data converter (the
    stack's payloads are encrypted with its own codec keys, docs/security.md) and
    :attr:`settings` the settings the worker runs with; :meth:`run` takes a task to its
    ``RunResult``, :meth:`start` returns the handle instead (for runs you signal, query or
    decide on), :meth:`wait_for_approvals` waits until a run asks a human.

    ``worker_env`` adds environment variables to the worker (e.g. ``KEEL_MCP_WEATHER=stdio:
    python weather.py`` for an MCP server of your own), ``component_env`` to the other
    components by name (``temporal``, ``codec``, ``simulator``, ``support_desk``,
    ``knowledge``).
    ``home`` keeps the stack's databases and logs (``home/logs/*.log``) where you say; by
    default a temporary directory, removed at the end unless something failed: a stack that
    does not start names the log to read in its ``ProcessStartError``, an exception out of the
    block gets a note saying where the logs are. ``shipped=False`` leaves the shipped
    profiles and bundled scenarios out.
    """

    def __init__(
        self,
        *,
        profiles: Paths = (),
        scenarios: Paths = (),
        home: str | os.PathLike[str] | None = None,
        worker_env: Mapping[str, str] | None = None,
        component_env: Mapping[str, Mapping[str, str]] | None = None,
        shipped: bool = True,
    ) -> None:
        self.profile_dirs = _directories(profiles, "profile")
        self.scenario_dirs = _directories(scenarios, "scenario")
        self._home = Path(home).resolve() if home is not None else None
        self._worker_env = dict(worker_env or {})
        self._component_env = {name: dict(env) for name, env in (component_env or {}).items()}
        self._shipped = shipped
        self._stack: Stack | None = None
        self._client: Client | None = None
        self._settings: Settings | None = None
        self._temporary = False

    # ------------------------------------------------------------------ the block

    async def __aenter__(self) -> LocalStack:
        if self._stack is not None:
            raise RuntimeError("this LocalStack is already running")
        home = self._make_home()
        config = StackConfig.isolated(
            home,
            extra_worker_env={"KEEL_PROFILES_PATH": self._profiles_path(), **self._worker_env},
            component_env=self._component_env,
            scenarios=self._scenario_dir(home),
        )
        stack = Stack(config)
        await _to_thread_to_the_end(stack.up, undo=stack.down)
        self._stack = stack
        try:
            # What the worker sees (it inherits this process's environment), so that
            # client-side checks (profile found, limits allowed) agree with the worker's.
            self._settings = Settings.from_env({**os.environ, **config.worker_env()})
            self._client = await connect(self._settings)
        except BaseException:
            await self._stop(failed=True)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        home = self.stack.config.home
        await self._stop(failed=exc is not None)
        if exc is not None:
            exc.add_note(f"keel.testing: the stack's logs are in {home / 'logs'}")

    async def _stop(self, *, failed: bool) -> None:
        stack, self._stack, self._client, self._settings = self._stack, None, None, None
        if stack is not None:
            await asyncio.to_thread(stack.down)
            if self._temporary and not failed:
                shutil.rmtree(stack.config.home, ignore_errors=True)

    def _make_home(self) -> Path:
        self._temporary = self._home is None
        home = self._home or Path(tempfile.mkdtemp(prefix="keel-test-"))
        home.mkdir(parents=True, exist_ok=True)
        return home

    def _profiles_path(self) -> str:
        dirs = [*self.profile_dirs, *([SHIPPED_PROFILES] if self._shipped else [])]
        return os.pathsep.join(str(d) for d in dirs)

    def _scenario_dir(self, home: Path) -> Path | None:
        """The one directory the simulator serves: the bundled one when nothing is added,
        else a merge under ``home`` (the simulator reads a single directory)."""
        sources = [*self.scenario_dirs, *([BUNDLED_SCENARIOS] if self._shipped else [])]
        if sources == [BUNDLED_SCENARIOS]:
            return None
        merged = home / "scenarios"
        shutil.rmtree(merged, ignore_errors=True)
        merged.mkdir(parents=True)
        for source in sources:
            for path in sorted(source.glob("*.toml")):
                if not (merged / path.name).exists():
                    shutil.copyfile(path, merged / path.name)
        return merged

    # ------------------------------------------------------------------ inside the block

    @property
    def stack(self) -> Stack:
        """The running processes (``stack.log_path("worker")``, ``stack.config`` ports)."""
        if self._stack is None:
            raise RuntimeError("LocalStack is not running: use it in `async with`")
        return self._stack

    @property
    def client(self) -> Client:
        """A Temporal client of this stack, with Keel's data converter and the stack's keys."""
        if self._client is None:
            raise RuntimeError("LocalStack is not running: use it in `async with`")
        return self._client

    @property
    def settings(self) -> Settings:
        """Temporal address, profile path, task queue: what the worker runs with."""
        if self._settings is None:
            raise RuntimeError("LocalStack is not running: use it in `async with`")
        return self._settings

    async def start(
        self,
        profile: str,
        task: str,
        *,
        principal: Principal | None = None,
        limits: LimitOverrides | None = None,
        workflow_id: str | None = None,
    ) -> WorkflowHandle[object, RunResult]:
        """Start a run as ``keel run`` does: the input and the profile are checked first, so
        a mistake raises ``InputError`` / ``ProfileError`` here, not a failed workflow."""
        raw: dict[str, object] = {"profile": profile, "task": task}
        if principal is not None:
            raw["principal"] = principal.model_dump()
        if limits is not None:
            raw["limits"] = limits.model_dump(exclude_none=True)
        agent_input = build_input(raw, self.settings)
        return await start_run(self.client, self.settings, agent_input, workflow_id)

    async def run(
        self,
        profile: str,
        task: str,
        *,
        principal: Principal | None = None,
        limits: LimitOverrides | None = None,
        workflow_id: str | None = None,
    ) -> RunResult:
        """Start a run and wait for its ``RunResult`` (whatever its status)."""
        handle = await self.start(
            profile, task, principal=principal, limits=limits, workflow_id=workflow_id
        )
        return await handle.result()

    async def wait_for_approvals(
        self, handle: WorkflowHandle[Any, Any], *, timeout: float = 60.0
    ) -> list[ApprovalRequest]:
        """The run's pending approval requests, once it waits for a human; ``[]`` when it
        ends (or halts) without asking. Asks the run itself, not visibility, so there is no
        indexing delay to wait out."""
        async with asyncio.timeout(timeout):
            while True:
                status: RunStatus = await handle.query(QUERY_STATUS, result_type=RunStatus)
                if status.state == "awaiting_approval":
                    requests: list[ApprovalRequest] = await handle.query(
                        QUERY_PENDING_APPROVALS, result_type=list[ApprovalRequest]
                    )
                    if requests:
                        return requests
                elif status.state not in WAITING_STATES:
                    return []
                await asyncio.sleep(0.1)


def _directories(paths: Paths, kind: str) -> list[Path]:
    """``paths`` as existing, absolute directories (the worker runs in another working
    directory); a missing one is a ConfigError naming it."""
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    found = [Path(p).resolve() for p in items]
    for directory in found:
        if not directory.is_dir():
            raise ConfigError(f"{kind} directory {directory} does not exist")
    return found


async def _to_thread_to_the_end(function: Callable[[], T], *, undo: Callable[[], Any]) -> T:
    """Run blocking ``function`` in a thread without blocking the event loop. Cancelling the
    caller cannot stop the thread, so then let it finish and ``undo`` its work: a cancelled
    start must not leave processes behind."""
    task = asyncio.ensure_future(asyncio.to_thread(function))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            await task
        finally:
            await asyncio.to_thread(undo)
        raise
