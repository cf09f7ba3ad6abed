"""Who holds a ledger claim, and whether that holder can still commit its effect.

A claim token names its holder's process — ``<nonce>/<pid>/<boot id>/<host>`` — so a claim
whose holder is provably gone can be taken over at once instead of after its lease (see the
liveness notes in :mod:`mcp_servers.shared.ledger`).
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Literal

Holder = Literal["live", "dead", "unknown"]

# Tokens of this process whose request is still being handled (claiming, waiting, running
# the tool, recording). A pending claim of this process whose token is not here was
# abandoned. A plain set: one-item add/discard/contains are atomic under the GIL, and the
# claim transaction reads it from a worker thread.
LIVE_TOKENS: set[str] = set()
_PROCESS: tuple[int, str] | None = None  # (pid, boot id) of this process; renewed after fork


def _this_process() -> tuple[int, str]:
    """This process's pid and a random boot id (a restarted server may get the same pid)."""
    global _PROCESS
    pid = os.getpid()
    if _PROCESS is None or _PROCESS[0] != pid:
        _PROCESS = (pid, uuid.uuid4().hex[:16])
    return _PROCESS


def new_token() -> str:
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
        return "live" if token in LIVE_TOKENS else "dead"
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
