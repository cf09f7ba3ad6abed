"""What a run does before its loop: read the input, load the profile, list the tools.

Errors here are of two kinds. Input or configuration that cannot start a run at all fails
the workflow with a non-retryable ``ApplicationError`` whose type names the cause (so the
Temporal UI and CLI show one readable message). A tool catalog or policy that cannot be used
is found after the run started, so it raises ``RunFailed``: the run ends with a typed result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.profiles import ProfileActivities
    from keel.contracts import (
        AgentInput,
        ContinuedRun,
        Principal,
        Profile,
        ServerSettings,
        ToolSpec,
        is_continued,
        names,
    )
    from keel.contracts.errors import describe_validation_error
    from workflows.failures import RunFailed, classify
    from workflows.report.progress_text import template_problems
    from workflows.tools.catalog import CatalogError, build_catalog
    from workflows.tools.mcp_calls import list_tools
    from workflows.tools.trust import legacy_server, read_only_check
    from workflows.tools.validation import PolicyError, check_policies

PROFILE_LOAD_TIMEOUT = timedelta(seconds=30)
# Failure classes of runs that fail before they start (workflow failures, not results).
START_FAILURES = {
    names.ERROR_INVALID_INPUT: "invalid_input",
    names.ERROR_PROFILE: "config_error",
    names.ERROR_CONFIG: "config_error",
    names.ERROR_UPSTREAM_UNAVAILABLE: "upstream_unavailable",
}


INPUT_EXAMPLE = '{"profile": "support", "task": "..."}'


def parse_input(raw: Any, extra: Sequence[Any] = ()) -> AgentInput | ContinuedRun:
    """Validate workflow input; a mistake fails the workflow with a message naming the field.

    ``extra`` holds the inputs after the first (``temporal workflow start`` given ``--input``
    twice): a run takes exactly one, an ``AgentInput`` — or, when an earlier run of the same
    workflow id continued as new, the ``ContinuedRun`` it handed on (it has a ``generation``,
    which an ``AgentInput`` never has).
    """
    if extra:
        raise _invalid_input(
            f"AgentWorkflow takes exactly one input, an AgentInput object, but was given"
            f" {1 + len(extra)}: pass a single --input {INPUT_EXAMPLE}"
        )
    if isinstance(raw, AgentInput | ContinuedRun):
        return raw
    if raw is None:
        raise _invalid_input(
            f"AgentWorkflow needs one input, an AgentInput object, and was given none (or"
            f" null): pass --input {INPUT_EXAMPLE}"
        )
    kind: type[AgentInput | ContinuedRun] = ContinuedRun if is_continued(raw) else AgentInput
    try:
        return kind.model_validate(raw)
    except ValidationError as exc:
        raise _invalid_input(
            "invalid AgentWorkflow input:\n" + describe_validation_error(exc, "input")
        ) from None


def _invalid_input(message: str) -> ApplicationError:
    return ApplicationError(message, type=names.ERROR_INVALID_INPUT, non_retryable=True)


async def load_profile(name: str) -> Profile:
    """The ``keel.profile.load`` activity: the resolved profile lands in history, so a run
    keeps the profile it started with. A failure fails the workflow with its cause's type."""
    try:
        profile = await workflow.execute_activity_method(
            ProfileActivities.load,
            name,
            start_to_close_timeout=PROFILE_LOAD_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1)),
            summary=f"load profile {name}",
        )
    except ActivityError as exc:
        _, message = classify(exc, f"profile {name!r}")
        cause = exc.cause
        error_type = cause.type if isinstance(cause, ApplicationError) else None
        raise ApplicationError(
            message, type=error_type or names.ERROR_UPSTREAM_UNAVAILABLE, non_retryable=True
        ) from None
    if profile.pipeline and workflow.info().workflow_type == names.WORKFLOW_TYPE:
        raise ApplicationError(
            f"profile {name!r} is run by the pipeline {names.PIPELINE_PREFIX}{profile.pipeline},"
            f" not by {names.WORKFLOW_TYPE}: start that workflow type (keel run does)",
            type=names.ERROR_PROFILE,
            non_retryable=True,
        )
    return profile


async def discover_tools(
    servers: list[ServerSettings], principal: Principal | None = None
) -> tuple[list[ToolSpec], list[ToolSpec]]:
    """List every server's tools once per run: (allowed for the model, all of them)."""
    listings = await asyncio.gather(*(list_tools(s, principal) for s in servers))
    listed = {s.name: r for s, r in zip(servers, listings, strict=True)}
    try:
        allowed = build_catalog(servers, listed)
        everything = [
            tool
            for s in servers
            for tool in build_catalog([s.model_copy(update={"tools": ["*"]})], listed)
        ]
    except CatalogError as exc:
        raise RunFailed("tool_catalog_error", str(exc)) from None
    return allowed, everything


def run_servers(profile: Profile, current: bool) -> dict[str, ServerSettings]:
    """The run's servers by name; runs recorded before ``approval`` / ``deduplicates`` existed
    (``current`` false: workflow.patched) keep the old meaning of ``trusted``."""
    return {s.name: s if current else legacy_server(s) for s in profile.servers}


def check_profile(
    profile: Profile, catalog_all: list[ToolSpec], servers: dict[str, ServerSettings] | None = None
) -> None:
    """Policy and progress-template mistakes, found once at the start instead of mid-run.

    ``servers`` (the run's, by name) decides which lookup tools are read-only: an untrusted
    server's own ``readOnlyHint`` is not enough (workflows/tools/trust.py)."""
    by_name = servers if servers is not None else {s.name: s for s in profile.servers}
    try:
        check_policies(profile.tools, catalog_all, read_only_check(by_name, profile.tools))
    except PolicyError as exc:
        raise RunFailed("config_error", f"profile {profile.name!r}: {exc}") from None
    problems = template_problems(profile.tools, catalog_all)
    if problems:
        raise RunFailed(
            "config_error",
            f"profile {profile.name!r}: invalid progress template:\n" + "\n".join(problems),
        )
