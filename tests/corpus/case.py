"""What a corpus case is: a scripted hostile model, a profile, a principal, decisions, and
what must hold at the end. Cases are data (tests/corpus/cases_*.py); the harness turns each
into a simulator scenario and a profile, runs it on the corpus stack and checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Simulator features a case's scenario needs beyond today's ToolCallSpec/TurnSpec: the
# scenario is validated before the stack starts, and a case whose scenario the simulator
# cannot load fails on its own (naming the field) instead of breaking the others.
NEEDS_TOOL_CALL_ID = "tool_calls.id"  # simulator ToolCallSpec.id (being added)
NEEDS_USAGE = "turns.usage"  # simulator TurnSpec.usage (being added)


@dataclass(frozen=True)
class Act:
    """One decision the corpus sends (through tests/corpus/decide.py, the one helper).

    ``request`` picks the pending request by creation order once ``wait`` requests are
    pending; ``approval_id`` overrides the id (unknown ids, guessed ids); ``early`` sends it
    right after the start, before any request exists; ``arguments`` are the arguments the
    decider means (an edit's new arguments, or what the decider believes they approve);
    ``refused`` is what must come of it (None: not checked).
    """

    kind: str
    request: int = 0
    wait: int = 1
    via: str = "update"
    arguments: dict[str, Any] | None = None
    reason: str | None = None
    roles: tuple[str, ...] = ("supervisor",)
    approval_id: str | None = None
    early: bool = False
    refused: bool | None = None
    arguments_of: int | None = None  # use the arguments of this other pending request
    again: bool = False  # decide the request the previous act decided, once more


@dataclass(frozen=True)
class Expect:
    """Per-case expectations beyond the three invariants every case is checked for."""

    status: tuple[str, ...] = ()  # allowed RunResult statuses; () = any typed status
    failure_class: str | tuple[str, ...] | None = None  # one class, or the classes allowed
    start_error: str | None = None  # ApplicationError type of a run that cannot start
    ran: tuple[str, ...] = ()  # tools that must have reached their server
    not_ran: tuple[str, ...] = ()  # tools that must never have reached their server
    outcome: dict[str, str] = field(default_factory=dict)  # tool -> outcome of a step of it
    requested: tuple[str, ...] = ()  # tools that must have waited for a human
    effects: int | None = None  # exact number of real side effects of the run


@dataclass(frozen=True)
class Case:
    name: str
    klass: str
    turns: list[dict[str, Any]] = field(default_factory=list)
    profile: str = "desk"
    principal: tuple[str, tuple[str, ...]] = ("corpus-agent", ("agent",))
    task: str = "Maria Lopez (CUS-1001) says ORD-1042 arrived damaged. Please help."
    acts: tuple[Act, ...] = ()
    auto_reject: bool = True  # the harness rejects whatever the case's acts leave pending
    after_last: str = "final"
    expect: Expect = field(default_factory=Expect)
    raw_input: Any = None  # a workflow input sent as is (runs that must not start)
    limits: dict[str, Any] | None = None  # per-run limit overrides (lower only)
    needs: frozenset[str] = frozenset()
    # Accounts only this case touches: an effect that carries no idempotency key (a lookup
    # runs without one) is charged to the case owning the account it touched.
    accounts: tuple[str, ...] = ()
    note: str = ""

    @property
    def slug(self) -> str:
        """Scenario and profile name of this case."""
        return "c_" + self.name


def call(name: str, arguments: dict[str, Any] | None = None, *, raw: str | None = None,
         id: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One scripted tool call: ``arguments``, or ``raw`` JSON text sent verbatim."""
    spec: dict[str, Any] = {"name": name}
    if raw is not None:
        spec["arguments_raw"] = raw
    else:
        spec["arguments"] = arguments or {}
    if id is not None:
        spec["id"] = id
    return spec


def turn(*calls: dict[str, Any], content: str = "", **extra: Any) -> dict[str, Any]:
    return {"content": content, "tool_calls": list(calls), **extra}


def answer(text: str = "Done: I have answered with what I found.") -> dict[str, Any]:
    return {"content": text}


REFUSED = ("invalid", "refused", "rejected")  # outcomes of calls that never reached a server
RAN = ("ok", "tool_error", "failed")
