"""Idempotency ledger: exactly-once effects for MCP tools called by an at-least-once runner.

Temporal runs activities at least once: a tool call whose effect happened but whose answer
was lost runs again. Keel sends every tool call with a stable key in the request's ``_meta``
(``{"io.keel/idempotency-key": "<workflow_id>:<step>:<tool_call_id>"}``). A tool wrapped by
:meth:`Ledger.idempotent` records its outcome under (tool name, key) in SQLite:

* a repeated key returns the recorded result (or the recorded ``is_error`` refusal) without
  running the tool again;
* the same key with different arguments is refused with an ``is_error`` result;
* records expire ``ttl_seconds`` after the call completed and are purged lazily;
* a call without a key (MCP Inspector, Claude Desktop) runs normally, not deduplicated.

Usage — stack the decorator under ``@server.tool`` and fence the write transaction::

    from mcp_servers.ledger import Ledger, fence, ttl_from_env

    ledger = Ledger(db_path, ttl_seconds=ttl_from_env("MY_SERVER_LEDGER_TTL_SECONDS"))
    ledger.initialize()

    @server.tool(name="refund_order", annotations=...)
    @ledger.idempotent
    async def refund_order(order_id: OrderId, amount: float) -> Refund:
        return await anyio.to_thread.run_sync(partial(shop.refund, order_id, amount))

    # inside shop.refund, in the same SQLite file, just before COMMIT:
    #     fence(conn)

The tool's MCP schema does not change: the decorator adds a keyword-only ``Context``
parameter (which MCPServer injects and leaves out of the input schema) to read ``_meta``.

Concurrency design (why a claim row *and* a fence): before the tool runs, one
``BEGIN IMMEDIATE`` transaction inserts a ``pending`` row whose primary key is (tool, key)
and whose ``token`` is unique to this attempt, so of two concurrent calls only one claims
the key; the other waits for the row to become ``done`` and replays it. Recording the result
afterwards leaves a window (process killed after the effect committed, before the record),
so tools whose effect lives in the ledger's database call :func:`fence` inside their own
write transaction: it moves the row to ``applied`` only if this attempt still holds the
claim, atomically with the effect. Hence a ``pending`` row provably has no effect, and a
claim can be taken over safely at any time — the old holder's fence then fails and rolls
its effect back, so a fenced effect happens at most once whoever holds the key. An
``applied`` row is never re-run: while its holder lives (within its lease) a duplicate
waits for the record, as for a ``pending`` row; once the holder is gone, or hung past its
lease, the call is reported as applied-but-unrecorded. Tools with
effects outside the database (a real mail API) cannot fence: for them an attempt cut off
mid-effect (crashed, cancelled, taken over while still running) may be repeated, i.e.
at-least-once. Holding one SQLite write transaction across the whole tool call would close
the window too, but would serialize every write tool of the server and hold a database
lock across ``await``; the claim keeps calls concurrent.

Liveness (why a dead or abandoned holder never blocks a key): the fence makes takeovers
safe, so the rules below only decide *when* a ``pending`` claim is taken over. The old
rule — only after a 60 s lease, while retries wait for the holder until their client gives
up — deadlocked under at-least-once callers with short timeouts: a retry waited, took a
dead holder's claim over late in its client's window, was cancelled mid-tool when the
client timed out, and that cancellation (a ``BaseException``) skipped the release, leaving
a fresh ``pending`` claim with a fresh lease; retries spaced evenly (15 s of Temporal
backoff + timeout, 4 per 60 s lease) hit the same phase every time, so the call never
completed. Now:

* The token names its holder's process (``<nonce>/<pid>/<boot id>/<host>``). A claim whose
  holder is known to be gone is taken over at once, without waiting for the lease: a
  previous incarnation of this server (same host and pid, another boot id — a restarted
  container's pid 1), another pid on this host that no longer runs (or is a zombie), or
  this very process when no handler of it holds the token any more. A dead process cannot
  commit its fence. Holders on other hosts, live processes (or reused pids), and tokens
  of the old format keep the lease (``lease_seconds``, default 60 s), which also bounds a
  hung holder.
* A handler whose tool stops before its effect — cancelled because its client timed out
  or disconnected, server shutdown, an unexpected exception — deletes its ``pending``
  claim (in a shielded thread), so it never leaves a fresh lease behind.
* Waiting for a live holder is bounded by ``wait_seconds`` (default 2 s, well under a
  client's read timeout): then the call fails with the JSON-RPC error
  :data:`CALL_IN_PROGRESS` (-32010, not an ``is_error`` result, which a caller takes as
  the final answer). Keel's worker (temporalio-mcp) raises it as a *retryable*
  ``MCPProtocolError``, and the retry replays the recorded result. A waiting handler holds
  no claim; it is cancelled at its poll when its client goes, and gives up after
  ``wait_seconds`` anyway if the transport does not cancel it. So a takeover happens only
  within ``wait_seconds`` of a request's start, leaving the tool the rest of the client's
  timeout, and a call whose holder died or was abandoned completes on the first retry
  that reaches a live server.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import os
import socket
import sqlite3
import time
import typing
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar, cast

import anyio
import anyio.to_thread
from mcp import MCPError
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.context_injection import find_context_parameter
from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python

from mcp_servers.common import CliError

IDEMPOTENCY_META_KEY = "io.keel/idempotency-key"
DEFAULT_TTL_SECONDS = 7 * 24 * 3600.0
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_WAIT_SECONDS = 2.0
CALL_IN_PROGRESS = -32010  # JSON-RPC error code (implementation-defined band): retry later
MAX_KEY_LENGTH = 255
CONTEXT_PARAMETER = "keel_ledger_context"  # added to wrapped tools; never in the schema
TABLE = "idempotency_ledger"

P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger(__name__)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    tool TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'done')),
    token TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    is_error INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    PRIMARY KEY (tool, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {TABLE}_expiry ON {TABLE}(expires_at);
"""


class ClaimLost(ToolError):
    """Raised by :func:`fence` when a newer attempt took the key over; rolls the effect back."""


@dataclass(frozen=True)
class _Claim:
    """The key this attempt holds while its tool runs (read by :func:`fence` via a contextvar)."""

    ledger: Ledger
    tool: str
    key: str
    token: str


@dataclass(frozen=True)
class _Decision:
    """What the claim transaction found: run the tool, replay, refuse, or wait for a holder."""

    action: Literal["run", "replay", "mismatch", "applied", "wait"]
    is_error: bool = False
    result: str | None = None


_ACTIVE: ContextVar[_Claim | None] = ContextVar("keel_ledger_claim", default=None)
# Tokens of this process whose request is still being handled (claiming, waiting, running
# the tool, recording). A pending claim of this process whose token is not here was
# abandoned. A plain set: one-item add/discard/contains are atomic under the GIL, and the
# claim transaction reads it from a worker thread.
_LIVE_TOKENS: set[str] = set()
_PROCESS: tuple[int, str] | None = None  # (pid, boot id) of this process; renewed after fork
Holder = Literal["live", "dead", "unknown"]


def fence(conn: sqlite3.Connection) -> None:
    """Mark the current idempotent call as applied, atomically with ``conn``'s transaction.

    Call it inside the write transaction that performs the tool's effect, just before
    COMMIT, on a connection to the ledger's database. Outside an idempotent call with a key
    it does nothing, so domain code can call it unconditionally. Raises :class:`ClaimLost`
    (so the transaction must roll back) if another attempt has taken the key over.
    """
    claim = _ACTIVE.get()
    if claim is not None:
        claim.ledger.fence_claim(conn, claim)


def ttl_from_env(variable: str, default: float = DEFAULT_TTL_SECONDS) -> float:
    """Record lifetime in seconds from ``variable`` (a number > 0), or :class:`CliError`."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise CliError(f"{variable} must be a number of seconds, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise CliError(f"{variable} must be > 0, got {raw}")
    return value


def fingerprint(arguments: Mapping[str, Any]) -> str:
    """Hash of the validated arguments, so ``42`` and ``42.0`` (or an omitted default) match."""
    plain = to_jsonable_python(dict(arguments))
    canonical = json.dumps(plain, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Ledger:
    """The idempotency records of one SQLite database (usually the server's own).

    Blocking SQLite work runs in worker threads with one short-lived connection per
    operation, like the support desk, so several server processes may share the file.
    ``lease_seconds`` is how long a claim whose holder may still be alive blocks its key;
    ``wait_seconds`` how long a call waits for such a holder before it fails with the
    retryable :data:`CALL_IN_PROGRESS` error (keep it well under the clients' read
    timeout). ``clock`` (wall-clock seconds; records outlive restarts) is injectable for
    tests; waiting uses the monotonic clock.
    """

    def __init__(
        self,
        path: Path,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        clock: Callable[[], float] = time.time,
        poll_seconds: float = 0.01,
    ) -> None:
        if ttl_seconds <= 0 or lease_seconds <= 0:
            raise ValueError("ttl_seconds and lease_seconds must be > 0")
        if wait_seconds < 0:
            raise ValueError("wait_seconds must be >= 0")
        self.path = path
        self.ttl_seconds = ttl_seconds
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.clock = clock
        self.poll_seconds = poll_seconds

    def initialize(self) -> None:
        """Create the ledger table (idempotent). Raises ``OSError``/``sqlite3.Error``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.executescript(SCHEMA)

    # ---- the decorator ---------------------------------------------------------------------

    def idempotent(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Deduplicate an async MCPServer tool by the ``io.keel/idempotency-key`` in ``_meta``.

        Place it under ``@server.tool(...)``. The result is recorded as JSON of the declared
        return type and decoded again, so the first answer and every replay are identical.
        A ``ToolError`` is recorded and replayed; any other exception, and cancellation,
        releases the claim unless the effect was fenced (the tool did not complete, so a
        retry runs it again).
        """
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@idempotent needs an async tool function, got {fn!r}")
        signature = inspect.signature(fn, eval_str=True)
        hints = typing.get_type_hints(fn, include_extras=True)
        adapter: TypeAdapter[Any] = TypeAdapter(hints.get("return", Any))
        ctx_name = find_context_parameter(fn)
        added = ctx_name is None
        if ctx_name is None:
            ctx_name = CONTEXT_PARAMETER
            signature = _with_context_parameter(signature, ctx_name)
            hints = {**hints, ctx_name: Context | None}

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = kwargs.pop(ctx_name, None) if added else kwargs.get(ctx_name)
            key, tool = _key_and_tool(ctx)
            if key is None:
                return await fn(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = {k: v for k, v in bound.arguments.items() if k != ctx_name}
            return await self.run(
                tool or fn.__name__, key, arguments, lambda: fn(*args, **kwargs), adapter
            )

        wrapper.__annotations__ = hints
        setattr(wrapper, "__signature__", signature)  # noqa: B010 - read by MCPServer
        return cast(Callable[P, Awaitable[R]], wrapper)

    async def run(
        self,
        tool: str,
        key: str,
        arguments: Mapping[str, Any],
        call: Callable[[], Awaitable[Any]],
        adapter: TypeAdapter[Any] | None = None,
    ) -> Any:
        """Run ``call`` at most once per (tool, key) within the TTL; the decorator's engine.

        Raises :class:`MCPError` :data:`CALL_IN_PROGRESS` if another live attempt still
        holds the key after ``wait_seconds``.
        """
        adapter = adapter or TypeAdapter(Any)
        digest = fingerprint(arguments)
        claim = _Claim(self, tool, key, _new_token())
        _LIVE_TOKENS.add(claim.token)
        try:
            return await self._run(claim, digest, call, adapter)
        finally:
            _LIVE_TOKENS.discard(claim.token)

    async def _run(
        self,
        claim: _Claim,
        digest: str,
        call: Callable[[], Awaitable[Any]],
        adapter: TypeAdapter[Any],
    ) -> Any:
        """Claim the key (waiting at most ``wait_seconds`` for a live holder), then act."""
        tool, key = claim.tool, claim.key
        deadline = anyio.current_time() + self.wait_seconds
        delay = self.poll_seconds
        while (decision := await _in_thread(self._claim, claim, digest)).action == "wait":
            # Another live attempt holds the key. Poll for its record (this unshielded sleep
            # is where a handler whose client went away is cancelled, holding nothing), but
            # not for long: the caller's retry replays the result once it is recorded.
            left = deadline - anyio.current_time()
            if left <= 0:
                _event("ledger.busy", tool, key, waited_s=self.wait_seconds)
                raise MCPError(
                    code=CALL_IN_PROGRESS,
                    message=f"the call with idempotency key {key!r} to {tool} is still in"
                    " progress in another request; retry it later to get its result",
                    data={"tool": tool, "idempotency_key": key, "retryable": True},
                )
            await anyio.sleep(min(delay, left))
            delay = min(delay * 2, 0.25)
        if decision.action == "mismatch":
            raise ToolError(
                f"idempotency key {key!r} was already used for {tool} with different"
                " arguments; use a new key for a new call"
            )
        if decision.action == "applied":
            raise ToolError(
                f"the call with idempotency key {key!r} to {tool} was applied, but its result"
                " was not recorded (the server stopped mid-call); check the current state"
                " with a read tool instead of repeating it"
            )
        if decision.action == "replay":
            _event("ledger.replay", tool, key, is_error=decision.is_error)
            assert decision.result is not None
            if decision.is_error:
                raise ToolError(decision.result)
            return adapter.validate_json(decision.result)
        return await self._execute(claim, call, adapter)

    async def _execute(
        self, claim: _Claim, call: Callable[[], Awaitable[Any]], adapter: TypeAdapter[Any]
    ) -> Any:
        """Run the tool holding ``claim``; record its result or error, or release the claim."""
        reset = _ACTIVE.set(claim)
        try:
            value = await call()
        except ClaimLost:
            raise  # a newer attempt owns the key; it records the outcome
        except ToolError as exc:
            await _in_thread(self._record, claim, True, str(exc))
            raise
        except BaseException:
            # Crashed, or cancelled (client timed out or disconnected, server stopping):
            # give the key back unless the effect was fenced, so a retry runs at once.
            await _in_thread(self._release, claim)
            raise
        finally:
            _ACTIVE.reset(reset)
        encoded = adapter.dump_json(value, by_alias=True).decode()
        await _in_thread(self._record, claim, False, encoded)
        return adapter.validate_json(encoded)

    # ---- SQLite ------------------------------------------------------------------------------

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            if not write:
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _claim(self, claim: _Claim, digest: str) -> _Decision:
        """Purge expired records, then claim the key, find its record, or find its holder."""
        now = self.clock()
        with self._connect(write=True) as conn:
            conn.execute(f"DELETE FROM {TABLE} WHERE expires_at <= ?", (now,))
            row = conn.execute(
                f"SELECT fingerprint, state, token, claimed_at, is_error, result FROM {TABLE}"
                " WHERE tool = ? AND key = ?",
                (claim.tool, claim.key),
            ).fetchone()
            if row is None:
                conn.execute(
                    f"INSERT INTO {TABLE} (tool, key, fingerprint, state, token, claimed_at,"
                    " expires_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                    (claim.tool, claim.key, digest, claim.token, now, self._hold_until(now)),
                )
                return _Decision("run")
            stored, state, token, claimed_at, is_error, result = row
            if stored != digest:
                return _Decision("mismatch")
            if state == "done":
                return _Decision("replay", bool(is_error), result)
            holder = holder_state(token)
            if state == "applied":
                # The effect committed. While its holder lives and its lease runs, the
                # record is a thread hop away: wait for it. Otherwise it never comes.
                if holder != "dead" and now - claimed_at < self.lease_seconds:
                    return _Decision("wait")
                return _Decision("applied")
            if holder == "dead":
                why = "its holder is gone"
            elif now - claimed_at >= self.lease_seconds:
                why = f"its lease of {self.lease_seconds:g} s ran out"
            else:
                return _Decision("wait")
            _event("ledger.takeover", claim.tool, claim.key, logging.WARNING, why=why)
            conn.execute(
                f"UPDATE {TABLE} SET token = ?, claimed_at = ?, expires_at = ?"
                " WHERE tool = ? AND key = ?",
                (claim.token, now, self._hold_until(now), claim.tool, claim.key),
            )
            return _Decision("run")

    def _hold_until(self, now: float) -> float:
        """A claim's own expiry: never purged before its lease could be taken over."""
        return now + self.lease_seconds + self.ttl_seconds

    def fence_claim(self, conn: sqlite3.Connection, claim: _Claim) -> None:
        """See :func:`fence`; ``conn`` must be inside a write transaction on this database."""
        main = conn.execute("PRAGMA database_list").fetchone()[2]
        if main and Path(main).resolve() != self.path.resolve():
            raise RuntimeError(f"fence() on {main}, but the ledger of this tool is {self.path}")
        updated = conn.execute(
            f"UPDATE {TABLE} SET state = 'applied' WHERE tool = ? AND key = ? AND token = ?"
            " AND state IN ('pending', 'applied')",
            (claim.tool, claim.key, claim.token),
        ).rowcount
        if updated != 1:
            raise ClaimLost(
                f"idempotency key {claim.key!r} for {claim.tool} was taken over by a newer"
                " attempt; this attempt changed nothing"
            )

    def _record(self, claim: _Claim, is_error: bool, result: str) -> None:
        """Store the outcome, if this attempt still holds the claim (else a newer one does)."""
        now = self.clock()
        with self._connect(write=True) as conn:
            conn.execute(
                f"UPDATE {TABLE} SET state = 'done', is_error = ?, result = ?, expires_at = ?"
                " WHERE tool = ? AND key = ? AND token = ?",
                (int(is_error), result, now + self.ttl_seconds, claim.tool, claim.key, claim.token),
            )

    def _release(self, claim: _Claim) -> None:
        """Forget a claim whose tool stopped before applying, so a retry can run at once."""
        with self._connect(write=True) as conn:
            conn.execute(
                f"DELETE FROM {TABLE} WHERE tool = ? AND key = ? AND token = ?"
                " AND state = 'pending'",
                (claim.tool, claim.key, claim.token),
            )


def _event(event: str, tool: str, key: str, level: int = logging.INFO, **fields: Any) -> None:
    """One structured log event (Keel's JSON lines put the ``keel`` extra's fields at the top
    level; any other logging setup still shows the event name)."""
    logger.log(level, event, extra={"keel": {"tool": tool, "idempotency_key": key, **fields}})


async def _in_thread(fn: Callable[..., R], *args: Any) -> R:
    """Run blocking ledger SQL in a thread; shielded so a cancelled call still records."""
    with anyio.CancelScope(shield=True):
        result = await anyio.to_thread.run_sync(functools.partial(fn, *args))
    return result


def _this_process() -> tuple[int, str]:
    """This process's pid and a random boot id (a restarted server may get the same pid)."""
    global _PROCESS
    pid = os.getpid()
    if _PROCESS is None or _PROCESS[0] != pid:
        _PROCESS = (pid, uuid.uuid4().hex[:16])
    return _PROCESS


def _new_token() -> str:
    """A claim token unique to one attempt that names its process: nonce/pid/boot/host."""
    pid, boot = _this_process()
    return f"{uuid.uuid4().hex}/{pid}/{boot}/{socket.gethostname()}"


def holder_state(token: str) -> Holder:
    """Whether the attempt holding a ``pending`` claim with ``token`` can still commit.

    ``dead`` only when provable: an abandoned token of this process, an earlier process
    with this pid (another boot id), or a pid on this host that no longer runs. Other hosts,
    live pids (perhaps reused) and tokens of the old format are ``unknown`` (the lease
    decides). Assumes processes sharing a ledger file on one host name share a pid space.
    """
    parts = token.split("/", 3)
    if len(parts) != 4 or not parts[1].isdigit() or parts[3] != socket.gethostname():
        return "unknown"
    pid, boot = int(parts[1]), parts[2]
    own_pid, own_boot = _this_process()
    if pid == own_pid:
        if boot != own_boot:
            return "dead"  # this pid's previous owner; only one process has a pid at a time
        return "live" if token in _LIVE_TOKENS else "dead"
    return "unknown" if _pid_alive(pid) else "dead"


def _pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (and is not a zombie); POSIX only."""
    if os.name != "posix" or pid <= 0:
        return True  # cannot tell (and os.kill would terminate on Windows): assume alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. EPERM: it exists, owned by another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): a zombie counts as alive, the lease decides
    fields = stat.rpartition(")")[2].split()
    return not fields or fields[0] not in ("Z", "X")


def _with_context_parameter(signature: inspect.Signature, name: str) -> inspect.Signature:
    """``signature`` plus a keyword-only ``name: Context | None = None`` (before ``**kwargs``)."""
    extra = inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Context | None
    )
    params = list(signature.parameters.values())
    at = next(
        (i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params)
    )
    return signature.replace(parameters=[*params[:at], extra, *params[at:]])


def _key_and_tool(ctx: Context | None) -> tuple[str | None, str | None]:
    """The idempotency key from the request's ``_meta`` and the tool name the client called."""
    if ctx is None:
        return None, None
    try:
        request = ctx.request_context
    except ValueError:  # called outside a request (e.g. server.call_tool in-process)
        return None, None
    key = (request.meta or {}).get(IDEMPOTENCY_META_KEY)
    if key is None:
        return None, None
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
        raise ToolError(
            f"_meta {IDEMPOTENCY_META_KEY!r} must be a non-empty string of at most"
            f" {MAX_KEY_LENGTH} characters"
        )
    name = (request.params or {}).get("name")
    return key, name if isinstance(name, str) else None
