"""Per-run sandboxes of a server's SQLite database, for evals only.

With sandboxes on, every tool call whose request ``_meta`` carries ``io.keel/run`` (the
workflow id, stamped by Keel's worker on every tool call) is served from that run's own copy
of a freshly seeded database, created on its first call: ``<db>.sandboxes/run-<sha256>.db``
next to the main file. Calls without the key use the main database. So concurrent eval runs
of the same task (each refunding ORD-1042, say) never see each other's effects, and an eval
reads a run's final state by calling a read tool with the same ``_meta``.

How: the server enters :meth:`Sandboxes.scope` around each tool call; it sets a context
variable that :func:`routed` reads where the desk and the idempotency ledger open their
SQLite connections, so the desk's rows, the ledger's records and the approval grants' uses
of a run all live in its sandbox file (the ledger's ``fence`` must run in the same file as
the effect). The context variable follows the call into its worker thread (anyio copies the
context). A sandbox is a copy (``shutil.copyfile`` of one file) of a template seeded when the
server starts, not of the main database, which calls without the key may have changed.

Bounds and cleanup: the directory is emptied whenever the server starts in sandbox mode, and
at most ``limit`` sandboxes are created (then a call for a new run is an ``is_error`` result
naming the limit). The eval runner starts its stack under a temporary directory and removes
it afterwards, sandboxes included.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import anyio.to_thread
from mcp.server.mcpserver.exceptions import ToolError

from keel.contracts.names import META_RUN

DEFAULT_LIMIT = 5000
MAX_RUN_LENGTH = 255
SANDBOX_MODES = ("off", "per-run")

_ROUTE: ContextVar[tuple[Path, Path] | None] = ContextVar("keel_sandbox_route", default=None)


def routed(path: Path) -> Path:
    """The file to open for database ``path`` in the current call: its sandbox copy inside a
    sandboxed call, else ``path`` itself."""
    route = _ROUTE.get()
    if route is not None and route[0] == path:
        return route[1]
    return path


class Sandboxes:
    """The sandboxes of database ``main``: ``prepare(path)`` creates and seeds a database at
    ``path`` (the template), ``limit`` bounds how many runs get one."""

    def __init__(
        self, main: Path, prepare: Callable[[Path], None], limit: int = DEFAULT_LIMIT
    ) -> None:
        self.main = main
        self.directory = main.with_name(main.name + ".sandboxes")
        self.template = self.directory / "template.db"
        self.prepare = prepare
        self.limit = limit
        self._lock = threading.Lock()
        self._count = 0

    def reset(self) -> None:
        """Empty the sandbox directory and seed the template (at server start)."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        self.prepare(self.template)
        conn = sqlite3.connect(self.template, isolation_level=None)
        try:  # one self-contained file to copy
            conn.execute("PRAGMA journal_mode = DELETE")
        finally:
            conn.close()
        self._count = 0

    def path_of(self, run: str) -> Path:
        """Where run ``run``'s sandbox lives (a hash: any workflow id is a safe file name)."""
        digest = hashlib.sha256(run.encode()).hexdigest()[:32]
        return self.directory / f"run-{digest}.db"

    def ensure(self, run: str) -> Path:
        """Run ``run``'s sandbox, copied from the template on first use (blocking)."""
        path = self.path_of(run)
        with self._lock:
            if path.exists():
                return path
            if self._count >= self.limit:
                raise ToolError(
                    f"sandbox limit reached ({self.limit} runs); restart the server to clear"
                    " its sandboxes"
                )
            partial = path.with_suffix(".partial")
            shutil.copyfile(self.template, partial)
            conn = sqlite3.connect(partial, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            finally:
                conn.close()
            partial.replace(path)
            self._count += 1
        return path

    @contextlib.asynccontextmanager
    async def scope(self, meta: Mapping[str, Any] | None) -> AsyncIterator[None]:
        """Serve the calls inside from the sandbox ``meta`` names (none: the main DB)."""
        run = (meta or {}).get(META_RUN)
        if run is None:
            yield
            return
        if not isinstance(run, str) or not 0 < len(run) <= MAX_RUN_LENGTH:
            raise ToolError(
                f"_meta {META_RUN!r} must be a non-empty string of at most {MAX_RUN_LENGTH}"
                " characters"
            )
        path = await anyio.to_thread.run_sync(self.ensure, run)
        token = _ROUTE.set((self.main, path))
        try:
            yield
        finally:
            _ROUTE.reset(token)
