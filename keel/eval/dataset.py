"""An eval dataset: the TOML format of ``evals/<name>.toml`` as pydantic models.

A dataset names configurations (a profile, or a pipeline with a profile) and tasks; each task
says how the eval's human answers approval requests and what a passing run looks like
(``[tasks.expect]``). Unknown keys are errors (a misspelt check must not silently pass), and
a dataset that does not load is one readable line (:class:`~keel.contracts.errors.InputError`).
The format is documented in docs/operations.md, "Evals".
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from keel.contracts._base import Strict
from keel.contracts.errors import InputError, describe_validation_error
from keel.contracts.run import Principal

# Names that become parts of workflow ids (eval-<run>-<config>-<task>-<trial>).
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ExpectedStatus = Literal[
    "completed", "halted", "failed", "rejected", "awaiting_approval", "awaiting_guidance"
]
Approve = Literal["approve", "reject", "none"]
DEFAULT_PRINCIPAL = Principal(id="eval", roles=["agent"])


class StateCheck(Strict):
    """The final state of a tool server, read through a read tool in the run's sandbox:
    ``path`` (dotted, list indexes as numbers) into the tool's structured result."""

    server: str = "support_desk"
    tool: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    path: str = ""
    equals: Any = None
    contains: Any = None
    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> StateCheck:
        given = [
            name
            for name in ("equals", "contains", "at_least", "at_most")
            if getattr(self, name) is not None
        ]
        if not given:
            raise ValueError("a state check needs equals, contains, at_least or at_most")
        return self


class Expect(Strict):
    """What a passing run looks like; every given field is one check."""

    status: ExpectedStatus | None = None
    failure_class: str | None = None
    answer_contains: list[str] = Field(default_factory=list)
    answer_not_contains: list[str] = Field(default_factory=list)
    answer_matches: str | None = None
    tools_called: list[str] = Field(default_factory=list)
    tools_not_called: list[str] = Field(default_factory=list)
    approvals: int | None = Field(default=None, ge=0)
    state: list[StateCheck] = Field(default_factory=list)

    @field_validator("answer_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value


class Task(Strict):
    id: str = Field(pattern=NAME)
    task: str = Field(min_length=1)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    principal: Principal = DEFAULT_PRINCIPAL
    approve: Approve = "approve"
    configs: list[str] | None = None
    profile: str | None = Field(
        default=None, description="the profile of a pipeline config that names none"
    )
    expect: Expect = Field(default_factory=Expect)


class Config(Strict):
    """How tasks are run: ``profile:<name>`` or ``pipeline:<name>[@<profile>]``."""

    spec: str = Field(pattern=r"^(profile:[^@\s]+|pipeline:[^@\s]+(@[^@\s]+)?)$")
    description: str = ""

    @property
    def kind(self) -> Literal["profile", "pipeline"]:
        return "profile" if self.spec.startswith("profile:") else "pipeline"

    @property
    def target(self) -> str:
        """The profile name, or the pipeline's name."""
        return self.spec.split(":", 1)[1].split("@", 1)[0]

    @property
    def profile(self) -> str | None:
        """The profile of the runs (None: a pipeline config taking it from each task)."""
        if self.kind == "profile":
            return self.target
        rest = self.spec.split("@", 1)
        return rest[1] if len(rest) == 2 else None


class Dataset(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    default_config: str | None = None
    configs: dict[str, Config] = Field(min_length=1)
    tasks: list[Task] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Dataset:
        for name in self.configs:
            if not re.match(NAME, name):
                raise ValueError(f"config name {name!r} must match {NAME}")
        if self.default_config is not None and self.default_config not in self.configs:
            raise ValueError(f"default_config {self.default_config!r} is not among the configs")
        seen: set[str] = set()
        for task in self.tasks:
            if task.id in seen:
                raise ValueError(f"task id {task.id!r} appears twice")
            seen.add(task.id)
            unknown = sorted(set(task.configs or []) - set(self.configs))
            if unknown:
                raise ValueError(f"task {task.id!r} names unknown config(s) {', '.join(unknown)}")
        return self

    def covers(self, task: Task, config: str) -> bool:
        return task.configs is None or config in task.configs


def parse_dataset(text: str, source: str = "dataset") -> Dataset:
    """Parse a dataset's TOML text; any problem is one :class:`InputError` line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Dataset.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{source}: {first_problem(exc)}") from None


def first_problem(exc: ValidationError) -> str:
    """The first of pydantic's errors as one line, with how many more there are."""
    lines = describe_validation_error(exc, "dataset").splitlines()
    more = f" (and {len(lines) - 1} more problem(s))" if len(lines) > 1 else ""
    return lines[0].removeprefix("dataset: ").replace("Value error, ", "") + more


def load_dataset(path: Path) -> Dataset:
    """Read and parse the dataset at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read dataset {path}: {getattr(exc, 'strerror', exc)}") from None
    return parse_dataset(text, str(path))


def parse_config_option(option: str, dataset: Dataset) -> tuple[str, Config]:
    """``--config NAME`` (one of the dataset's) or ``--config NAME=SPEC`` (a new one)."""
    name, sep, spec = option.partition("=")
    if not sep:
        if name not in dataset.configs:
            known = ", ".join(dataset.configs)
            raise InputError(f"--config {name}: the dataset has no such config (it has: {known})")
        return name, dataset.configs[name]
    if not re.match(NAME, name):
        raise InputError(f"--config {option}: the name must match {NAME}")
    try:
        return name, Config(spec=spec)
    except ValidationError:
        raise InputError(
            f"--config {option}: SPEC must be profile:<name> or pipeline:<name>[@<profile>]"
        ) from None
