"""Per-dependency circuit breakers: a provider outage degrades runs instead of killing them all.

Temporal already retries every failed activity, but without a breaker each of those retries
still goes to the network: during an outage every run keeps a worker slot busy waiting for a
connect timeout, and the dependency gets hammered the moment it tries to come back. A circuit
per dependency (one per LLM provider base URL, one per MCP server name, per worker process)
turns that into a fast, cheap failure that tells Temporal *when* to try again:

- ``closed``: calls pass; consecutive failures are counted. ``failure_threshold`` of them in a
  row open the circuit.
- ``open``: calls fail fast with ``ApplicationError(type="CircuitOpen")``, retryable, with
  ``next_retry_delay`` set to the rest of the cool-down, so the activity's next attempt lands
  when a probe is allowed instead of following the retry policy's back-off.
- ``half_open``: after the cool-down exactly one probe call goes through; the others keep
  failing fast. Probe success closes the circuit, probe failure reopens it for a fresh cool-down.

What counts as a failure is the caller's decision (``FailurePredicate``): an exception that
proves the dependency answered (an HTTP 400, an MCP tool error) must not open the circuit.
Cancellation is neutral (the run gave up, the dependency did nothing wrong) unless Temporal
says the activity timed out, which is a dependency too slow to answer.

All state changes happen synchronously between awaits, under a lock that is never held across
an await, so concurrent activities on one event loop (or threads) see consistent transitions.
The clock is injectable so tests drive the cool-down without sleeping.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from keel.contracts.errors import ConfigError
from keel.runtime.config import env_number

T = TypeVar("T")
Clock = Callable[[], float]
FailurePredicate = Callable[[BaseException], bool]
Pause = Callable[[float], Awaitable[None]]

log = logging.getLogger("keel.breaker")

FAILURES_ENV = "KEEL_BREAKER_FAILURES"
COOLDOWN_ENV = "KEEL_BREAKER_COOLDOWN_SECONDS"
CIRCUIT_OPEN_ERROR_TYPE = "CircuitOpen"
# While a half-open probe is in flight the others retry soon: the probe decides within one
# call, and an early retry that still finds the probe running costs one fast failure.
PROBE_WAIT_SECONDS = 1.0


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerConfig:
    """How many consecutive failures open a circuit and how long it stays open."""

    failure_threshold: int = 5
    cooldown_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ConfigError(
                f"breaker failure threshold must be at least 1, got {self.failure_threshold}"
            )
        if not (math.isfinite(self.cooldown_seconds) and self.cooldown_seconds > 0):
            raise ConfigError(
                "breaker cool-down must be a positive number of seconds,"
                f" got {self.cooldown_seconds}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BreakerConfig:
        """Read ``KEEL_BREAKER_FAILURES`` and ``KEEL_BREAKER_COOLDOWN_SECONDS`` (unset = default).

        Lives here rather than in ``keel.runtime.config.Settings`` because only the worker uses it;
        a bad value is a ``ConfigError`` naming the variable, so the worker refuses to start.
        """
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            failure_threshold=_env_int(env, FAILURES_ENV, defaults.failure_threshold),
            cooldown_seconds=_env_seconds(env, COOLDOWN_ENV, defaults.cooldown_seconds),
        )


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    return env_number(
        env,
        name,
        int,
        default,
        not_a="a whole number",
        valid=lambda value: value >= 1,
        rule="must be at least 1",
    )


def _env_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    return env_number(
        env,
        name,
        float,
        default,
        not_a="a number of seconds",
        valid=lambda value: math.isfinite(value) and value > 0,
        rule="must be a positive, finite number of seconds",
    )


def every_exception_fails(exc: BaseException) -> bool:
    """The default classification: any exception from the call is the dependency's failure."""
    return True


def _cancellation_is_timeout() -> bool:
    """Whether the current activity was cancelled because Temporal timed it out."""
    if not activity.in_activity():
        return False
    details = activity.cancellation_details()
    return bool(details and details.timed_out)


@dataclass(frozen=True)
class _Permit:
    """A caller's admission to the dependency; ``generation`` ties its outcome to one state."""

    generation: int
    probe: bool


class CircuitBreaker:
    """One circuit: the health of one dependency as seen by this worker process."""

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        label: str | None = None,
        is_failure: FailurePredicate = every_exception_fails,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self.label = label or name
        self.config = config or BreakerConfig()
        self._is_failure = is_failure
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        # Bumped on every transition: outcomes of calls admitted under an older state
        # (e.g. slow calls still in flight when the circuit opened) do not move the state.
        self._generation = 0
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._last_cause = ""
        self._opens = 0
        self._rejected = 0

    @property
    def state(self) -> CircuitState:
        return self._state

    def retry_in(self) -> float:
        """Seconds until a probe may go out (0 when calls may pass now)."""
        with self._lock:
            return self._retry_in_locked(self._clock())

    def acquire(self) -> _Permit:
        """Admit one call or raise ``CircuitOpen``; pair with ``record``/``release``."""
        with self._lock:
            now = self._clock()
            if self._state is CircuitState.OPEN and self._retry_in_locked(now) <= 0:
                self._transition(
                    CircuitState.HALF_OPEN, f"after {self.config.cooldown_seconds:g}s cool-down"
                )
            if self._state is CircuitState.CLOSED:
                return _Permit(self._generation, probe=False)
            if self._state is CircuitState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                return _Permit(self._generation, probe=True)
            self._rejected += 1
            raise self._open_error(now)

    def record_success(self, permit: _Permit) -> None:
        """The dependency answered: reset the failure count, close after a good probe."""
        with self._lock:
            if permit.generation != self._generation:
                return
            self._consecutive_failures = 0
            if permit.probe:
                self._probe_in_flight = False
                self._transition(CircuitState.CLOSED, "(probe succeeded)")

    def record_failure(self, permit: _Permit, exc: BaseException | None = None) -> None:
        """The dependency failed: count it; open at the threshold or after a failed probe."""
        with self._lock:
            if permit.generation != self._generation:
                return
            self._consecutive_failures += 1
            why = f": {_describe(exc)}" if exc is not None else ""
            self._last_cause = why[2:]
            if permit.probe:
                self._probe_in_flight = False
                self._open(f"(probe failed{why})")
            elif self._consecutive_failures >= self.config.failure_threshold:
                self._open(f"after {self._consecutive_failures} failures{why}")

    def release(self, permit: _Permit) -> None:
        """The call ended without a verdict (cancelled): free the probe slot, keep the state."""
        with self._lock:
            if permit.probe and permit.generation == self._generation:
                self._probe_in_flight = False

    async def admit(self, max_wait: float = 0.0, pause: Pause = asyncio.sleep) -> _Permit:
        """Admit one call, waiting out an open circuit for up to ``max_wait`` seconds.

        A call that waits has not been sent, so waiting is safe for any call; it lets an
        activity attempt outlast a short outage instead of failing at once and spending one
        of its run's retries on ``CircuitOpen``. Raises ``CircuitOpen`` when the circuit would
        stay closed to this call longer than ``max_wait``.
        """
        deadline = self._clock() + max_wait
        while True:
            try:
                return self.acquire()
            except ApplicationError:
                delay = self.retry_in()
                if self._clock() + delay > deadline:
                    raise
            await pause(max(delay, 0.05))

    async def call(self, fn: Callable[[], Awaitable[T]], max_wait: float = 0.0) -> T:
        """Run ``fn()`` through the circuit; its exception is re-raised after being counted.

        ``max_wait``: how long the call may wait for an open circuit (see ``admit``)."""
        permit = await self.admit(max_wait) if max_wait > 0 else self.acquire()
        try:
            result = await fn()
        except asyncio.CancelledError as exc:
            if _cancellation_is_timeout():
                self.record_failure(permit, exc)
            else:
                self.release(permit)
            raise
        except Exception as exc:
            if self._is_failure(exc):
                self.record_failure(permit, exc)
            else:
                self.record_success(permit)
            raise
        except BaseException:
            self.release(permit)
            raise
        self.record_success(permit)
        return result

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view of this circuit (for logs, status output, later metrics)."""
        with self._lock:
            return {
                "state": self._state.value,
                "consecutive_failures": self._consecutive_failures,
                "failure_threshold": self.config.failure_threshold,
                "cooldown_seconds": self.config.cooldown_seconds,
                "retry_in_seconds": round(self._retry_in_locked(self._clock()), 3),
                "probe_in_flight": self._probe_in_flight,
                "opens": self._opens,
                "rejected": self._rejected,
            }

    # -- internals (call with the lock held) ------------------------------------------------

    def _retry_in_locked(self, now: float) -> float:
        if self._state is CircuitState.OPEN:
            return max(0.0, self._opened_at + self.config.cooldown_seconds - now)
        if self._state is CircuitState.HALF_OPEN and self._probe_in_flight:
            return min(PROBE_WAIT_SECONDS, self.config.cooldown_seconds)
        return 0.0

    def _open(self, why: str) -> None:
        self._opened_at = self._clock()
        self._opens += 1
        self._transition(CircuitState.OPEN, why)

    def _transition(self, to: CircuitState, why: str) -> None:
        before = self._state
        self._state = to
        self._generation += 1
        if to is CircuitState.CLOSED:
            self._consecutive_failures = 0
        level = logging.WARNING if to is CircuitState.OPEN else logging.INFO
        fields = {"circuit": self.name, "from_state": before.value, "to_state": to.value}
        log.log(level, "breaker.transition", extra={"keel": {**fields, "why": why.strip()}})

    def _open_error(self, now: float) -> ApplicationError:
        delay = self._retry_in_locked(now)
        if self._state is CircuitState.OPEN:
            why = f"is open after {self._consecutive_failures} consecutive failures"
            if self._last_cause:
                why += f" (last: {self._last_cause})"
            when = f"next probe in {delay:.1f}s"
        else:
            why = "is half-open and its probe call is still running"
            when = f"retry in {delay:.1f}s"
        return ApplicationError(
            f"circuit for {self.label} {why}; {when}",
            type=CIRCUIT_OPEN_ERROR_TYPE,
            non_retryable=False,
            next_retry_delay=timedelta(seconds=max(delay, 0.001)),
        )


def root_cause(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (anyio task groups wrap a connection error in
    one: "unhandled errors in a TaskGroup (1 sub-exception)"); any other exception itself."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    """The cause of a transition, squeezed onto one short line for the log."""
    exc = root_cause(exc)
    if isinstance(exc, ApplicationError) and exc.type:
        text = f"{exc.type}: {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:199] + "…"


class BreakerRegistry:
    """The circuits of one kind of dependency, created on first use with shared settings.

    ``kind`` prefixes circuit names in logs and snapshots (``llm:http://…/v1``, ``mcp:knowledge``);
    ``label`` names the kind in error messages ("LLM provider", "MCP server").
    """

    def __init__(
        self,
        kind: str,
        label: str,
        config: BreakerConfig | None = None,
        *,
        is_failure: FailurePredicate = every_exception_fails,
        clock: Clock = time.monotonic,
    ) -> None:
        self.kind = kind
        self.label = label
        self.config = config or BreakerConfig()
        self._is_failure = is_failure
        self._clock = clock
        self._circuits: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> CircuitBreaker:
        """The circuit for ``key`` (a base URL, a server name), created closed on first use."""
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None:
                circuit = CircuitBreaker(
                    f"{self.kind}:{key}",
                    self.config,
                    label=f"{self.label} {key}",
                    is_failure=self._is_failure,
                    clock=self._clock,
                )
                self._circuits[key] = circuit
            return circuit

    async def call(self, key: str, fn: Callable[[], Awaitable[T]], max_wait: float = 0.0) -> T:
        """Run ``fn()`` through the circuit of ``key`` (waiting up to ``max_wait`` seconds for
        an open circuit)."""
        return await self.get(key).call(fn, max_wait)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every circuit's snapshot, by circuit name."""
        with self._lock:
            circuits = list(self._circuits.values())
        return {circuit.name: circuit.snapshot() for circuit in circuits}
