"""Child-process helpers shared by the stack launcher, the demo and the tests.

Keel starts real processes (Temporal dev server, simulator, MCP servers, worker); this module
keeps the one way of starting them, waiting until they answer, and stopping them.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx2


class ProcessStartError(RuntimeError):
    """A child process exited or did not become ready in time."""


@dataclass
class Child:
    """A started child process and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_offset: int = 0  # where this process's output starts in an appended log

    def log_text(self) -> str:
        """What this process has written to its log so far."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self.log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def free_port() -> int:
    """An unused TCP port on loopback, below the kernel's ephemeral range.

    Ports handed out by binding to port 0 come from the ephemeral range, where the kernel
    also picks the source ports of outgoing connections; a server restarted on such a port
    (the chaos tests restart Temporal) can find it taken. So pick outside that range.
    """
    low, _ = _ephemeral_range()
    candidates = list(range(20000, min(low, 32768)))
    random.shuffle(candidates)
    for port in candidates[:500]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    *,
    drop_env: Sequence[str] = (),
) -> Child:
    """Start ``argv`` in its own process group with stdout+stderr appended to ``log_path``.

    The child inherits this environment, minus variables whose names start with one of the
    ``drop_env`` prefixes, plus ``env``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {
        key: value
        for key, value in os.environ.items()
        if not any(key.startswith(prefix) for prefix in drop_env)
    }
    if env:
        full_env.update(env)
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )
    return Child(name=name, popen=popen, log_path=log_path, log_offset=offset)


def python_argv(*args: str) -> list[str]:
    """argv that runs this interpreter (the project's virtualenv) with ``args``."""
    return [sys.executable, *args]


def wait_http(child: Child, url: str, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers any HTTP status below 500, or raise with the log tail."""
    deadline = time.monotonic() + timeout
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if not child.alive():
            raise ProcessStartError(
                f"{child.name} exited with code {child.popen.returncode} before it was ready;"
                f" last lines of {child.log_path}:\n{child.log_tail()}"
            )
        try:
            response = httpx2.get(url, timeout=2.0)
            if response.status_code < 500:
                return
            last_error = f"HTTP {response.status_code}"
        except httpx2.HTTPError as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)
    raise ProcessStartError(
        f"{child.name} did not answer {url} within {timeout:.0f}s ({last_error});"
        f" last lines of {child.log_path}:\n{child.log_tail()}"
    )


def wait_tcp(child: Child, host: str, port: int, timeout: float = 30.0) -> None:
    """Wait until ``host:port`` accepts TCP connections, or raise with the log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise ProcessStartError(
                f"{child.name} exited with code {child.popen.returncode} before it was ready;"
                f" last lines of {child.log_path}:\n{child.log_tail()}"
            )
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.1)
    raise ProcessStartError(
        f"{child.name} did not listen on {host}:{port} within {timeout:.0f}s;"
        f" last lines of {child.log_path}:\n{child.log_tail()}"
    )


def stop_pid(pid: int, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Signal the process group of ``pid`` and wait for it to go; SIGKILL after ``timeout``."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def stop(child: Child, timeout: float = 10.0) -> None:
    """Stop a child started by :func:`spawn` and reap it."""
    if child.alive():
        stop_pid(child.pid, timeout=timeout)
    try:
        child.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.popen.kill()
        child.popen.wait()


def kill(child: Child) -> None:
    """SIGKILL a child's whole process group at once (crash simulation) and reap it."""
    stop_pid(child.pid, timeout=0.0, sig=signal.SIGKILL)
    child.popen.wait()


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(") ", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def wait_log(child: Child, text: str, timeout: float = 30.0) -> None:
    """Wait until ``text`` appears in the child's log (used for the worker's ready line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in child.log_text():
            return
        if not child.alive():
            raise ProcessStartError(
                f"{child.name} exited with code {child.popen.returncode} before it was ready;"
                f" last lines of {child.log_path}:\n{child.log_tail()}"
            )
        time.sleep(0.1)
    raise ProcessStartError(
        f"{child.name} did not log {text!r} within {timeout:.0f}s;"
        f" last lines of {child.log_path}:\n{child.log_tail()}"
    )
