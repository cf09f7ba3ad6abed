"""Scenario files: the script the simulated model replays, loaded and validated once at start-up.

A scenario is a TOML file whose stem is its name (``support_demo.toml`` is served as model
``sim/support_demo``). Every file is validated with pydantic before the server listens, so a typo
in a scenario fails the start-up with the file and field named, instead of failing a test run
half-way through with a confusing model answer.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

BUNDLED_DIR = Path(__file__).resolve().parent / "scenarios"
"""The scenarios shipped with Keel (used when ``--scenarios`` is not given)."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ScenarioError(ValueError):
    """A scenario directory or file that cannot be served; ``str()`` is one readable line."""


class _Strict(BaseModel):
    """Unknown keys are errors: a misspelt ``latency_ms`` must not silently become the default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolCallSpec(_Strict):
    """One scripted tool call.

    ``arguments`` is serialized to the JSON string the wire format carries; ``arguments_raw`` is
    sent verbatim so a scenario can produce the malformed JSON real models sometimes emit.
    ``id`` scripts the call's id, as some servers get it wrong: the same id twice in a turn,
    or ``""`` to omit the id from the wire; by default it is ``call_<turn>_<position>``.
    """

    name: str = Field(min_length=1, max_length=64)
    id: str | None = Field(default=None, max_length=128)
    arguments: dict[str, Any] | None = None
    arguments_raw: str | None = None

    @model_validator(mode="after")
    def _one_argument_form(self) -> ToolCallSpec:
        if self.arguments is not None and self.arguments_raw is not None:
            raise ValueError("give either 'arguments' or 'arguments_raw', not both")
        return self

    def arguments_json(self) -> str:
        """The ``function.arguments`` string exactly as it goes on the wire."""
        if self.arguments_raw is not None:
            return self.arguments_raw
        return json.dumps(self.arguments or {}, ensure_ascii=False)


class FaultSpec(_Strict):
    """A failure injected into one request of a turn (the n-th fault hits the n-th request).

    ``http`` answers ``status`` with an OpenAI-style error body; ``hang`` sleeps ``seconds`` and
    then answers normally, which models a call that outlives the caller's timeout.
    """

    kind: Literal["http", "hang"]
    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0, le=3600)
    retry_after_format: Literal["seconds", "http_date"] = Field(
        default="seconds", description="Retry-After as whole seconds, or as an HTTP date"
    )
    seconds: float | None = Field(default=None, gt=0, le=3600)
    message: str | None = None

    @model_validator(mode="after")
    def _fields_match_kind(self) -> FaultSpec:
        if self.kind == "http":
            if self.status is None:
                raise ValueError("kind 'http' needs 'status' (400-599)")
            if self.seconds is not None:
                raise ValueError("'seconds' applies to kind 'hang' only")
        else:
            if self.seconds is None:
                raise ValueError("kind 'hang' needs 'seconds'")
            if self.status is not None or self.retry_after is not None:
                raise ValueError("'status' and 'retry_after' apply to kind 'http' only")
        return self


WireVariant = Literal["standard", "content_parts", "object_arguments", "stream_only", "truncated"]
"""How a turn's answer goes on the wire: ``standard`` as OpenAI sends it; ``content_parts`` with
``content`` as a list of text parts; ``object_arguments`` with each call's ``arguments`` as a
JSON object instead of a string; ``stream_only`` as a ``text/event-stream`` whatever the request
asked; ``truncated`` as a JSON body cut in half (a complete HTTP answer, broken JSON)."""


class UsageSpec(_Strict):
    """Usage figures reported instead of the estimate (any integer: providers have bugs)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None


class TurnSpec(_Strict):
    """What the model answers at one turn (turn n = the request holds n assistant messages)."""

    latency_ms: int | None = Field(default=None, ge=0, le=600_000)
    content: str = ""
    tool_calls: list[ToolCallSpec] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)
    content_bytes: int | None = Field(
        default=None, ge=1, le=64_000_000, description="repeat 'content' to this many bytes"
    )
    wire: WireVariant = "standard"
    usage: UsageSpec | None = None

    def text(self) -> str:
        """The answer's content, repeated to ``content_bytes`` when set (huge answers)."""
        if self.content_bytes is None or not self.content:
            return self.content
        unit = self.content.encode()
        whole = (unit * (self.content_bytes // len(unit) + 1))[: self.content_bytes]
        return whole.decode("utf-8", "ignore")

    @model_validator(mode="after")
    def _says_something(self) -> TurnSpec:
        if not self.content and not self.tool_calls:
            raise ValueError("a turn needs 'content' or at least one entry in 'tool_calls'")
        return self


class Scenario(_Strict):
    """A whole script; ``name`` comes from the file name, not from the file's content."""

    name: str = Field(pattern=_NAME_RE.pattern)
    description: str = ""
    turns: list[TurnSpec] = Field(min_length=1)
    after_last: Literal["repeat_last", "final"] = "final"
    from_task: dict[str, str] = Field(default_factory=dict)
    """Placeholders filled from the run's task (its first user message): name → regular
    expression. ``{name}`` in a turn's content and in its tool calls' string arguments becomes
    the first match (group 1 when the pattern has a group), so one scenario can act on each
    run's own records (``order_id = 'ORD-\\d{4}'``). A placeholder whose pattern does not match
    stays as written."""
    prompt_cache: bool = False
    """OpenAI's automatic prompt caching on the chat-completions wire (simulator/cache.py):
    off unless a scenario asks, so the figures of every other scenario stay as they were.
    (The Anthropic wire caches where the request marks breakpoints, for every scenario.)"""
    turn_number: str | None = Field(default=None, pattern=r"^[a-z_]{1,32}$")
    """A placeholder filled with the turn's number (1-based), in the same places as
    ``from_task``'s: with ``after_last = "repeat_last"`` every turn then asks for something new
    (``page = "{turn}"``), the long runs of bench/history.py. An argument that is the
    placeholder alone becomes the number itself (a JSON integer, as a tool's schema wants)."""

    @model_validator(mode="after")
    def _patterns_compile(self) -> Scenario:
        for name, pattern in self.from_task.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"from_task.{name}: invalid regular expression: {exc}") from None
        return self

    @property
    def model_id(self) -> str:
        """The model name clients select this scenario with."""
        return f"sim/{self.name}"

    def turn(self, index: int, task: str = "") -> tuple[TurnSpec, bool]:
        """The turn to play at ``index`` and whether it is scripted (faults apply only then),
        its placeholders filled from ``task`` (see ``from_task``).

        Past the script, ``final`` answers a fixed closing text so a misbehaving agent loop ends
        instead of repeating tool calls; ``repeat_last`` replays the last turn to exercise loop
        detection.
        """
        if index < len(self.turns):
            return self._filled(self.turns[index], task, index), True
        if self.after_last == "repeat_last":
            last = self._filled(self.turns[-1], task, index)
            return TurnSpec(
                latency_ms=last.latency_ms, content=last.content, tool_calls=last.tool_calls
            ), False
        return TurnSpec(content=f"(scenario {self.name} has no more turns)"), False

    def _filled(self, turn: TurnSpec, task: str, index: int) -> TurnSpec:
        values: dict[str, str] = {}
        if self.turn_number is not None:
            values[self.turn_number] = str(index + 1)
        for name, pattern in self.from_task.items():
            match = re.search(pattern, task)
            if match:
                values[name] = match.group(1) if match.groups() else match.group(0)
        if not values:
            return turn
        calls = [
            call.model_copy(update={"arguments": _fill(call.arguments, values)})
            for call in turn.tool_calls
        ]
        return turn.model_copy(update={"content": _fill(turn.content, values), "tool_calls": calls})


def _fill(value: Any, values: dict[str, str]) -> Any:
    """``value`` with every ``{name}`` of ``values`` replaced, in strings at any depth."""
    if isinstance(value, str):
        for name, text in values.items():
            if value == f"{{{name}}}" and text.isdigit():
                return int(text)  # a whole-value number placeholder stays a number
            value = value.replace(f"{{{name}}}", text)
        return value
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    return value


def _describe(error: ValidationError) -> str:
    """Pydantic's errors as ``field: message`` pairs on one line (the CLI prints one line)."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {message}")
    return "; ".join(parts)


def load_scenario(path: Path) -> Scenario:
    """Parse and validate one scenario file, raising :class:`ScenarioError` naming the file."""
    name = path.stem
    if not _NAME_RE.match(name):
        raise ScenarioError(f"{path}: file name must match {_NAME_RE.pattern} (it is the model id)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: invalid TOML: {exc}") from None
    if "name" in data:
        raise ScenarioError(f"{path}: name: not allowed, the file name is the scenario name")
    try:
        return Scenario.model_validate({"name": name, **data})
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {_describe(exc)}") from None


def load_scenarios(directory: Path) -> dict[str, Scenario]:
    """Every ``*.toml`` in ``directory``, keyed by name; an empty directory is an error too."""
    if not directory.is_dir():
        raise ScenarioError(f"{directory}: scenario directory does not exist")
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise ScenarioError(f"{directory}: no *.toml scenario files")
    return {scenario.name: scenario for scenario in map(load_scenario, files)}
