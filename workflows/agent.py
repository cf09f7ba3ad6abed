"""AgentWorkflow: one agent run as a durable Temporal workflow.

Deterministic orchestration only. Every model call is the ``keel.llm.chat`` activity; every
tool listing and tool call is an MCP activity from ``temporalio-mcp``. The loop:

1. resolve the profile (activity: the resolved profile lands in history);
2. list each allowed server's tools once (kept in workflow state, so replay-safe);
3. call the model; run the turn's tool calls concurrently; feed results back; repeat until
   the model answers without tool calls or a limit stops the run.

The run always ends with a typed ``RunResult``. Only input that cannot start a run at all
(malformed input, unknown profile, limits above the profile's ceiling) fails the workflow,
with a non-retryable ``ApplicationError`` whose message names the field.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from mcp.types import CallToolResult, ListToolsResult
    from pydantic import ValidationError
    from temporalio.mcp import TemporalMCPClient

    from keel.errors import describe_validation_error
    from keel.models import (
        AgentInput,
        ChatMessage,
        ChatRequest,
        ChatResponse,
        Limits,
        Profile,
        RunResult,
        RunState,
        RunStatus,
        ServerSettings,
        StepRecord,
        ToolCall,
        ToolSpec,
        Usage,
    )
    from workflows.failures import FailureClass, classify
    from workflows.limits import LimitError, effective_limits
    from workflows.tools import (
        CatalogError,
        PreparedCall,
        RejectedCall,
        build_catalog,
        prepare_call,
        result_text,
    )

KEEL_STATE = SearchAttributeKey.for_keyword("KeelState")
IDEMPOTENCY_META_KEY = "io.keel/idempotency-key"
ATTEMPT_META_KEY = "io.keel/attempt"
LATENCY_META_KEY = "io.keel/latency-ms"
PROFILE_LOAD_TIMEOUT = timedelta(seconds=30)


class RunFailed(Exception):
    """Internal control flow: ends the run with a typed ``failed`` result."""

    def __init__(self, failure_class: FailureClass, message: str) -> None:
        super().__init__(message)
        self.failure_class = failure_class
        self.message = message


def parse_input(raw: Any) -> AgentInput:
    """Validate workflow input; a mistake fails the workflow with a message naming the field."""
    if isinstance(raw, AgentInput):
        return raw
    try:
        return AgentInput.model_validate(raw)
    except ValidationError as exc:
        raise ApplicationError(
            "invalid AgentWorkflow input:\n" + describe_validation_error(exc, "input"),
            type="InvalidInput",
            non_retryable=True,
        ) from None


class ToolCallFailed(Exception):
    """A tool call that could not be delivered; carries its step record."""

    def __init__(self, record: StepRecord, failure: RunFailed) -> None:
        super().__init__(failure.message)
        self.record = record
        self.failure = failure


@workflow.defn(name="AgentWorkflow")
class AgentWorkflow:
    """Runs one agent task under a profile; see the module docstring for the loop."""

    def __init__(self) -> None:
        self._state: RunState = "running"
        self._profile_name = ""
        self._model_name = ""
        self._messages: list[ChatMessage] = []
        self._catalog: list[ToolSpec] = []
        self._steps: list[StepRecord] = []
        self._usage = Usage()
        self._model_calls = 0
        self._tool_calls = 0
        self._last_event = "starting"

    # ---------------------------------------------------------------- public interface

    @workflow.run
    async def run(self, request: Any) -> RunResult:
        """Run one task. ``request`` is an ``AgentInput`` or its JSON form.

        Typed as ``Any`` on purpose: with a concrete type, a payload that does not decode
        (``--input '"hello"'``) fails every workflow task and the run hangs; decoding here
        turns it into a failed workflow with a message naming the field.
        """
        try:
            agent_input = parse_input(request)
        except ApplicationError:
            self._set_state("failed")
            raise
        self._profile_name = agent_input.profile
        self._set_state("running")
        profile = await self._load_profile(agent_input.profile)
        self._model_name = profile.model.name
        try:
            limits = effective_limits(profile.limits, agent_input.limits)
        except LimitError as exc:
            self._set_state("failed")
            raise ApplicationError(str(exc), type="InvalidInput", non_retryable=True) from None
        try:
            self._catalog = await self._discover_tools(profile.servers)
            return await self._loop(profile, agent_input, limits)
        except RunFailed as failure:
            return self._finish(
                "failed", failure_class=failure.failure_class, error=failure.message
            )

    @workflow.query(name="status")
    def status(self) -> RunStatus:
        return RunStatus(
            state=self._state,
            profile=self._profile_name,
            step=self._model_calls,
            tool_calls=self._tool_calls,
            usage=self._usage,
            last_event=self._last_event,
        )

    # ---------------------------------------------------------------- the loop

    async def _loop(self, profile: Profile, agent_input: AgentInput, limits: Limits) -> RunResult:
        self._messages = [
            ChatMessage(role="system", content=profile.system_prompt),
            ChatMessage(role="user", content=agent_input.task),
        ]
        while True:
            if self._model_calls >= limits.max_steps:
                return self._finish("halted", stop_reason="step_limit", failure_class="step_limit")
            response = await self._call_model(profile)
            self._messages.append(
                ChatMessage(
                    role="assistant", content=response.content, tool_calls=response.tool_calls
                )
            )
            if not response.tool_calls:
                return self._finish("completed", final_answer=response.content or "")
            if self._tool_calls + len(response.tool_calls) > limits.max_tool_calls:
                return self._finish(
                    "halted", stop_reason="tool_call_limit", failure_class="tool_call_limit"
                )
            self._messages.extend(await self._run_tools(profile, response.tool_calls))

    async def _load_profile(self, name: str) -> Profile:
        self._last_event = f"loading profile {name}"
        try:
            return await workflow.execute_activity(
                "keel.profile.load",
                name,
                result_type=Profile,
                start_to_close_timeout=PROFILE_LOAD_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1)),
                summary=f"load profile {name}",
            )
        except ActivityError as exc:
            _, message = classify(exc, f"profile {name!r}")
            cause = exc.cause
            error_type = cause.type if isinstance(cause, ApplicationError) else None
            self._set_state("failed")
            raise ApplicationError(
                message, type=error_type or "UpstreamUnavailable", non_retryable=True
            ) from None

    async def _discover_tools(self, servers: list[ServerSettings]) -> list[ToolSpec]:
        """List every server's tools once per run; the catalog lives in workflow state."""
        self._last_event = "listing tools"

        async def list_one(server: ServerSettings) -> ListToolsResult:
            client = TemporalMCPClient(
                server.name, activity_config=_mcp_config(server, "list tools")
            )
            try:
                return await client.list_tools()
            except ActivityError as exc:
                failure, message = classify(exc, f"MCP server {server.name!r} (list tools)")
                raise RunFailed(failure, message) from None

        listings = await asyncio.gather(*(list_one(s) for s in servers))
        try:
            return build_catalog(
                servers, {s.name: r for s, r in zip(servers, listings, strict=True)}
            )
        except CatalogError as exc:
            raise RunFailed("tool_catalog_error", str(exc)) from None

    async def _call_model(self, profile: Profile) -> ChatResponse:
        self._model_calls += 1
        step = self._model_calls
        self._last_event = f"step {step}: calling {profile.model.name}"
        started = workflow.now()
        request = ChatRequest(
            model=profile.model,
            messages=self._messages,
            tools=self._catalog,
            conversation_id=workflow.info().workflow_id,
        )
        try:
            response = await workflow.execute_activity(
                "keel.llm.chat",
                request,
                result_type=ChatResponse,
                start_to_close_timeout=timedelta(seconds=profile.model.timeout_seconds),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    maximum_interval=timedelta(seconds=30),
                    maximum_attempts=profile.model.max_attempts,
                ),
                summary=f"chat {profile.model.name} · step {step}",
            )
        except ActivityError as exc:
            failure, message = classify(exc, f"model {profile.model.name!r}")
            self._record(
                step, "model", profile.model.name, started, outcome="failed", detail=message
            )
            raise RunFailed(failure, message) from None
        self._usage = self._usage.plus(response.usage)
        self._record(
            step,
            "model",
            response.model,
            started,
            latency_ms=response.latency_ms,
            usage=response.usage,
            attempts=response.attempt,
            detail=f"{len(response.tool_calls)} tool call(s)" if response.tool_calls else "answer",
        )
        return response

    async def _run_tools(self, profile: Profile, calls: list[ToolCall]) -> list[ChatMessage]:
        """Validate every call of the turn, then run the valid ones concurrently.

        Records and tool messages keep the model's call order, whatever order the calls
        finish in, so results and step records are deterministic.
        """
        step = self._model_calls
        self._tool_calls += len(calls)
        servers = {s.name: s for s in profile.servers}
        outcomes = [prepare_call(call, self._catalog) for call in calls]
        self._last_event = f"step {step}: running {len(calls)} tool call(s)"
        results = await asyncio.gather(
            *(
                self._call_tool(step, servers[o.tool.server], o)
                if isinstance(o, PreparedCall)
                else self._reject(step, o)
                for o in outcomes
            ),
            return_exceptions=True,
        )
        messages: list[ChatMessage] = []
        failure: RunFailed | None = None
        for call, result in zip(calls, results, strict=True):
            if isinstance(result, ToolCallFailed):
                self._steps.append(result.record)
                failure = failure or result.failure
            elif isinstance(result, BaseException):
                raise result
            else:
                text, record = result
                self._steps.append(record)
                messages.append(ChatMessage(role="tool", tool_call_id=call.id, content=text))
        if failure is not None:
            raise failure
        return messages

    async def _reject(self, step: int, rejected: RejectedCall) -> tuple[str, StepRecord]:
        record = self._make_record(
            step,
            "tool",
            rejected.call.name,
            workflow.now(),
            tool_call_id=rejected.call.id,
            outcome="invalid",
            detail=f"{rejected.layer}: {rejected.message}",
        )
        return rejected.as_tool_content(), record

    async def _call_tool(
        self, step: int, server: ServerSettings, prepared: PreparedCall
    ) -> tuple[str, StepRecord]:
        call, tool = prepared.call, prepared.tool
        key = f"{workflow.info().workflow_id}:{step}:{call.id}"
        client = TemporalMCPClient(
            tool.server, activity_config=_mcp_config(server, _call_summary(tool.name, prepared))
        )
        started = workflow.now()
        try:
            meta: Any = {IDEMPOTENCY_META_KEY: key}
            result = await client.call_tool(tool.name, prepared.arguments, meta=meta)
        except ActivityError as exc:
            failure, message = classify(exc, f"tool {tool.name!r} on {tool.server!r}")
            record = self._make_record(
                step, "tool", tool.name, started, server=tool.server, tool_call_id=call.id,
                outcome="failed", detail=message, idempotency_key=key,
            )  # fmt: skip
            raise ToolCallFailed(record, RunFailed(failure, message)) from None
        text = result_text(result)
        attempts, latency = _activity_meta(result)
        record = self._make_record(
            step, "tool", tool.name, started, server=tool.server, tool_call_id=call.id,
            latency_ms=latency, attempts=attempts,
            outcome="tool_error" if result.is_error else "ok",
            detail=text[:200], idempotency_key=key,
        )  # fmt: skip
        return text, record

    # ---------------------------------------------------------------- bookkeeping

    def _make_record(
        self, step: int, kind: Any, name: str, started: Any, **fields: Any
    ) -> StepRecord:
        if fields.get("latency_ms") is None:
            fields["latency_ms"] = (workflow.now() - started).total_seconds() * 1000
        return StepRecord(step=step, kind=kind, name=name, started_at=started, **fields)

    def _record(self, step: int, kind: Any, name: str, started: Any, **fields: Any) -> None:
        self._steps.append(self._make_record(step, kind, name, started, **fields))

    def _set_state(self, state: RunState) -> None:
        self._state = state
        workflow.upsert_search_attributes([KEEL_STATE.value_set(state)])

    def _finish(
        self,
        status: Any,
        *,
        final_answer: str | None = None,
        stop_reason: str | None = None,
        failure_class: str | None = None,
        error: str | None = None,
    ) -> RunResult:
        state: RunState = {"completed": "completed", "halted": "halted"}.get(status, "failed")  # type: ignore[assignment]
        self._set_state(state)
        self._last_event = f"{status}" + (
            f": {stop_reason or failure_class}" if status != "completed" else ""
        )
        return RunResult(
            status=status,
            final_answer=final_answer,
            stop_reason=stop_reason,
            failure_class=failure_class,
            error=error,
            profile=self._profile_name,
            model=self._model_name,
            steps=self._steps,
            usage=self._usage,
            tool_calls=self._tool_calls,
            model_calls=self._model_calls,
        )


def _mcp_config(server: ServerSettings, summary: str) -> Any:
    return {
        "start_to_close_timeout": timedelta(seconds=server.timeout_seconds),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(milliseconds=500),
            maximum_interval=timedelta(seconds=10),
            maximum_attempts=server.max_attempts,
        ),
        "summary": summary,
    }


def _call_summary(tool: str, prepared: PreparedCall) -> str:
    args = json.dumps(prepared.arguments, separators=(",", ":"))
    return f"{tool} {args[:120]}"


def _activity_meta(result: CallToolResult) -> tuple[int, float | None]:
    """Attempt number and worker-side latency stamped by the worker's MCP interceptor."""
    meta = result.meta or {}
    attempt = meta.get(ATTEMPT_META_KEY)
    latency = meta.get(LATENCY_META_KEY)
    return (
        int(attempt) if isinstance(attempt, int) else 1,
        float(latency) if isinstance(latency, int | float) else None,
    )
