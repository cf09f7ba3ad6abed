"""Idempotency ledger: exactly-once effects for MCP tools called by an at-least-once runner.

Temporal runs activities at least once: a tool call whose effect happened but whose answer
was lost runs again. Keel sends every tool call with a stable key in the request's ``_meta``
(``{"io.keel/idempotency-key": "<workflow_id>:<step>:<tool_call_id>"}``). A tool wrapped by
:meth:`Ledger.idempotent` records its outcome under (tool name, key) in SQLite:

* a repeated key returns the recorded result (or the recorded ``is_error`` refusal) without
  running the tool again;
* the same key with different arguments is refused with an ``is_error`` result;
* records expire ``ttl_seconds`` after the call completed and are purged lazily;
* a call without a key (MCP Inspector, Claude Desktop) runs normally, not deduplicated —
  unless the tool requires approval (below).

Usage — stack the decorator under ``@server.tool`` and fence the write transaction::

    from mcp_servers.shared.auth.grants import grant_verifier_from
    from mcp_servers.shared.ledger import Ledger, fence, ttl_from_env

    ledger = Ledger(db_path, ttl_seconds=ttl_from_env("MY_SERVER_LEDGER_TTL_SECONDS"),
                    grants=grant_verifier_from(args))  # the launcher's parsed arguments
    ledger.initialize()

    @server.tool(name="refund_order", annotations=...)
    @ledger.idempotent(approval=True)   # bare ``@ledger.idempotent``: no grant needed
    async def refund_order(order_id: OrderId, amount: float) -> Refund:
        return await anyio.to_thread.run_sync(partial(shop.refund, order_id, amount))

    # inside shop.refund, in the same SQLite file, just before COMMIT:
    #     fence(conn)

The tool's MCP schema does not change: the decorator adds a keyword-only ``Context``
parameter (which MCPServer injects and leaves out of the input schema) to read ``_meta``.

Approval (``approval=True``): the tool runs only if the request's ``_meta["io.keel/grant"]``
holds an approval grant for exactly this call — a human's decision signed by Keel's worker,
naming the run, the tool and the digest of the arguments (:mod:`mcp_servers.shared.auth.grants`
checks it, against the ``grants`` verifier; without grant keys every call is refused). The
check comes before the claim: a refused call is an ``is_error`` result of one line
(``refund_order needs an approval grant: <reason>``), with no effect and no record. It needs
an idempotency key, and the grant's decision is bound to that key in the claim's transaction
(:mod:`.grant_uses`): the same key retried replays as above, any other key is refused.

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
  ``MCP_CALL_IN_PROGRESS`` (-32010, not an ``is_error`` result, which a caller takes as
  the final answer). Keel's worker (temporalio-mcp) raises it as a *retryable*
  ``MCPProtocolError``, and the retry replays the recorded result. A waiting handler holds
  no claim; it is cancelled at its poll when its client goes, and gives up after
  ``wait_seconds`` anyway if the transport does not cancel it. So a takeover happens only
  within ``wait_seconds`` of a request's start, leaving the tool the rest of the client's
  timeout, and a call whose holder died or was abandoned completes on the first retry
  that reaches a live server.

Modules: :mod:`.core` (the decorator, the call protocol, ``fence``), :mod:`.store` (the
SQLite records), :mod:`.grant_uses` (which call each approval decision let run),
:mod:`.holders` (claim tokens and whether their holder lives), :mod:`.request` (the key, tool
name, grant and received arguments read from a request). The ``_meta`` key and the
error code are ``keel.contracts.names.META_IDEMPOTENCY_KEY`` and ``MCP_CALL_IN_PROGRESS``,
defined once for the servers and Keel's worker.
"""

from mcp_servers.shared.ledger.core import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_TTL_SECONDS,
    DEFAULT_WAIT_SECONDS,
    Ledger,
    fence,
    fingerprint,
    ttl_from_env,
)
from mcp_servers.shared.ledger.holders import Holder, holder_state
from mcp_servers.shared.ledger.store import LOGGER_NAME, TABLE, ClaimLost, LedgerStore

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_TTL_SECONDS",
    "DEFAULT_WAIT_SECONDS",
    "LOGGER_NAME",
    "TABLE",
    "ClaimLost",
    "Holder",
    "Ledger",
    "LedgerStore",
    "fence",
    "fingerprint",
    "holder_state",
    "ttl_from_env",
]
