"""The ledger's call protocol: claim, wait for a live holder, run, record — and ``fence``.

:class:`Ledger` adds to the SQLite records (:class:`~.store.LedgerStore`) the decorator that
deduplicates a tool by its ``io.keel/idempotency-key`` and the engine behind it
(:meth:`Ledger.run`); :func:`fence` is what a tool's own write transaction calls to mark
the claim applied atomically with its effect.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import sqlite3
import time
import typing
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar, cast, overload

import anyio
import anyio.to_thread
from mcp import MCPError
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.context_injection import find_context_parameter
from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python

from keel.contracts.names import MCP_CALL_IN_PROGRESS
from mcp_servers.shared.auth.grants import (
    GrantRefused,
    GrantUse,
    GrantVerifier,
    access_token_claims,
    log_grant,
)
from mcp_servers.shared.config import ServerConfigError
from mcp_servers.shared.ledger.holders import LIVE_TOKENS, new_token
from mcp_servers.shared.ledger.request import (
    CONTEXT_PARAMETER,
    grant_and_arguments,
    key_and_tool,
    with_context_parameter,
)
from mcp_servers.shared.ledger.store import Claim, ClaimLost, LedgerStore, event

DEFAULT_TTL_SECONDS = 7 * 24 * 3600.0
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_WAIT_SECONDS = 2.0

P = ParamSpec("P")
R = TypeVar("R")


class _Decorator(Protocol):
    """What ``Ledger.idempotent(approval=...)`` returns: the decorator itself."""

    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> Callable[P, Awaitable[R]]: ...


_ACTIVE: ContextVar[Claim | None] = ContextVar("keel_ledger_claim", default=None)


def fence(conn: sqlite3.Connection) -> None:
    """Mark the current idempotent call as applied, atomically with ``conn``'s transaction.

    Call it inside the write transaction that performs the tool's effect, just before
    COMMIT, on a connection to the ledger's database. Outside an idempotent call with a key
    it does nothing, so domain code can call it unconditionally. Raises :class:`ClaimLost`
    (so the transaction must roll back) if another attempt has taken the key over.
    """
    claim = _ACTIVE.get()
    if claim is not None:
        claim.store.fence_claim(conn, claim)


def ttl_from_env(variable: str, default: float = DEFAULT_TTL_SECONDS) -> float:
    """Record lifetime in seconds from ``variable`` (a number > 0), or a config error."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ServerConfigError(f"{variable} must be a number of seconds, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ServerConfigError(f"{variable} must be > 0, got {raw}")
    return value


def fingerprint(arguments: Mapping[str, Any]) -> str:
    """Hash of the validated arguments, so ``42`` and ``42.0`` (or an omitted default) match."""
    plain = to_jsonable_python(dict(arguments))
    canonical = json.dumps(plain, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Ledger(LedgerStore):
    """Exactly-once effects for the tools of one server, recorded in one SQLite database.

    ``wait_seconds`` is how long a call waits for a live holder of its key before it fails
    with the retryable ``MCP_CALL_IN_PROGRESS`` error (keep it well under the clients' read
    timeout); waiting polls every ``poll_seconds`` (doubling, at most 0.25 s) on the
    monotonic clock. ``grants`` checks the approval grants of the tools marked
    ``approval=True`` (none: such tools refuse every call). See
    :class:`~.store.LedgerStore` for the other settings.
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
        grants: GrantVerifier | None = None,
    ) -> None:
        super().__init__(path, ttl_seconds=ttl_seconds, lease_seconds=lease_seconds, clock=clock)
        if wait_seconds < 0:
            raise ValueError("wait_seconds must be >= 0")
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self.grants = grants if grants is not None else GrantVerifier(None)

    @overload
    def idempotent(self, fn: Callable[P, Awaitable[R]], /) -> Callable[P, Awaitable[R]]: ...

    @overload
    def idempotent(self, *, approval: bool = False) -> _Decorator: ...

    def idempotent(
        self, fn: Callable[..., Awaitable[Any]] | None = None, *, approval: bool = False
    ) -> Any:
        """Deduplicate an async MCPServer tool by the ``io.keel/idempotency-key`` in ``_meta``.

        Place it under ``@server.tool(...)``, bare or as ``@ledger.idempotent(approval=True)``.
        The result is recorded as JSON of the declared return type and decoded again, so the
        first answer and every replay are identical. A ``ToolError`` is recorded and
        replayed; any other exception, and cancellation, releases the claim unless the effect
        was fenced (the tool did not complete, so a retry runs it again).

        ``approval=True``: the tool runs only with a valid approval grant for exactly this
        call (:mod:`mcp_servers.shared.auth.grants`), checked before the claim; the grant's
        decision is bound to the call's key in the claim's transaction (single use). A call
        without a grant, or without a key, is an ``is_error`` result and changes nothing.
        """
        if fn is None:
            return functools.partial(self._wrap, approval=approval)
        return self._wrap(fn, approval=approval)

    def _wrap(self, fn: Callable[P, Awaitable[R]], *, approval: bool) -> Callable[P, Awaitable[R]]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@idempotent needs an async tool function, got {fn!r}")
        signature = inspect.signature(fn, eval_str=True)
        hints = typing.get_type_hints(fn, include_extras=True)
        adapter: TypeAdapter[Any] = TypeAdapter(hints.get("return", Any))
        ctx_name = find_context_parameter(fn)
        added = ctx_name is None
        if ctx_name is None:
            ctx_name = CONTEXT_PARAMETER
            signature = with_context_parameter(signature, ctx_name)
            hints = {**hints, ctx_name: Context | None}

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = kwargs.pop(ctx_name, None) if added else kwargs.get(ctx_name)
            key, tool = key_and_tool(ctx)
            name = tool or fn.__name__
            grant = await self._approved(ctx, name, key) if approval else None
            if key is None:
                return await fn(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = {k: v for k, v in bound.arguments.items() if k != ctx_name}
            return await self.run(
                name, key, arguments, lambda: fn(*args, **kwargs), adapter, grant=grant
            )

        wrapper.__annotations__ = hints
        setattr(wrapper, "__signature__", signature)  # noqa: B010 - read by MCPServer
        return cast(Callable[P, Awaitable[R]], wrapper)

    async def _approved(self, ctx: Context | None, tool: str, key: str | None) -> GrantUse:
        """The call's verified grant, or a one-line ``ToolError`` (nothing claimed or run)."""
        grant, arguments = grant_and_arguments(ctx)
        token = access_token_claims(ctx)
        verify = functools.partial(
            self.grants.verify, grant, tool=tool, arguments=arguments, key=key, token_claims=token
        )
        try:
            # In a thread: an unknown key id may make the key set fetch its JWKS URL.
            use = await anyio.to_thread.run_sync(verify)
        except GrantRefused as exc:
            log_grant("grant.refused", tool, key, reason=str(exc))
            raise ToolError(f"{tool} needs an approval grant: {exc}") from None
        log_grant("grant.accepted", tool, key, decision=use.decision, approver=use.approver,
                  run=use.run, server=use.server)  # fmt: skip
        return use

    async def run(
        self,
        tool: str,
        key: str,
        arguments: Mapping[str, Any],
        call: Callable[[], Awaitable[Any]],
        adapter: TypeAdapter[Any] | None = None,
        *,
        grant: GrantUse | None = None,
    ) -> Any:
        """Run ``call`` at most once per (tool, key) within the TTL; the decorator's engine.

        ``grant``: the verified approval grant of the call, bound to (tool, key) with the
        claim; a ``ToolError`` if its decision already let another key run.
        Raises :class:`MCPError` ``MCP_CALL_IN_PROGRESS`` if another live attempt still
        holds the key after ``wait_seconds``.
        """
        adapter = adapter or TypeAdapter(Any)
        digest = fingerprint(arguments)
        claim = Claim(self, tool, key, new_token())
        LIVE_TOKENS.add(claim.token)
        try:
            return await self._run(claim, digest, call, adapter, grant)
        finally:
            LIVE_TOKENS.discard(claim.token)

    async def _run(
        self,
        claim: Claim,
        digest: str,
        call: Callable[[], Awaitable[Any]],
        adapter: TypeAdapter[Any],
        grant: GrantUse | None = None,
    ) -> Any:
        """Claim the key (waiting at most ``wait_seconds`` for a live holder), then act."""
        tool, key = claim.tool, claim.key
        deadline = anyio.current_time() + self.wait_seconds
        delay = self.poll_seconds
        while (decision := await _in_thread(self.claim, claim, digest, grant)).action == "wait":
            # Another live attempt holds the key. Poll for its record (this unshielded sleep
            # is where a handler whose client went away is cancelled, holding nothing), but
            # not for long: the caller's retry replays the result once it is recorded.
            left = deadline - anyio.current_time()
            if left <= 0:
                event("ledger.busy", tool, key, waited_s=self.wait_seconds)
                raise MCPError(
                    code=MCP_CALL_IN_PROGRESS,
                    message=f"the call with idempotency key {key!r} to {tool} is still in"
                    " progress in another request; retry it later to get its result",
                    data={"tool": tool, "idempotency_key": key, "retryable": True},
                )
            await anyio.sleep(min(delay, left))
            delay = min(delay * 2, 0.25)
        if decision.action == "grant_used":
            assert grant is not None
            why = f"decision {grant.decision!r} was already used for another call"
            log_grant("grant.refused", tool, key, reason=why, decision=grant.decision)
            raise ToolError(f"{tool} needs an approval grant: {why}; a decision approves one call")
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
            event("ledger.replay", tool, key, is_error=decision.is_error)
            assert decision.result is not None
            if decision.is_error:
                raise ToolError(decision.result)
            return adapter.validate_json(decision.result)
        return await self._execute(claim, call, adapter)

    async def _execute(
        self, claim: Claim, call: Callable[[], Awaitable[Any]], adapter: TypeAdapter[Any]
    ) -> Any:
        """Run the tool holding ``claim``; record its result or error, or release the claim."""
        reset = _ACTIVE.set(claim)
        try:
            value = await call()
        except ClaimLost:
            raise  # a newer attempt owns the key; it records the outcome
        except ToolError as exc:
            await _in_thread(self.record, claim, True, str(exc))
            raise
        except BaseException:
            # Crashed, or cancelled (client timed out or disconnected, server stopping):
            # give the key back unless the effect was fenced, so a retry runs at once.
            await _in_thread(self.release, claim)
            raise
        finally:
            _ACTIVE.reset(reset)
        encoded = adapter.dump_json(value, by_alias=True).decode()
        await _in_thread(self.record, claim, False, encoded)
        return adapter.validate_json(encoded)


async def _in_thread(fn: Callable[..., R], *args: Any) -> R:
    """Run blocking ledger SQL in a thread; shielded so a cancelled call still records."""
    with anyio.CancelScope(shield=True):
        result = await anyio.to_thread.run_sync(functools.partial(fn, *args))
    return result
