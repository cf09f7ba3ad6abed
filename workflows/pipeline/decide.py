"""A decision node: ask a model for a typed answer with a confidence, retry an invalid answer,
escalate a doubtful one — to a stronger tier, then to a human.

Workflow code. Each model call is the agent loop's own model step (workflows/agent/model_step.py:
the ``keel.llm.chat`` activity, the run's ledger, budgets checked before the call, the
fallback chain, progress and spans). The model is offered one tool, ``answer``, whose
parameters are the answer's JSON Schema plus ``confidence``; the arguments it sends are
validated with the answer's pydantic model (in the workflow: validation is deterministic). A
refused answer is sent back to the model as the tool's error, like a refused tool call in the
agent loop, and the model tries again up to ``max_invalid`` times before the node escalates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from keel.contracts import (
        ANSWER_TOOL,
        DECISION_SERVER,
        HUMAN,
        ChatMessage,
        DecisionAttempt,
        DecisionNodeRecord,
        ModelSettings,
        Profile,
        ToolCall,
        ToolSpec,
        answer_parameters,
    )
    from keel.contracts.errors import describe_validation_error
    from workflows.agent.call_ids import with_unique_ids
    from workflows.agent.model_step import ModelStep, before_model_call
    from workflows.agent.state import RunContext
    from workflows.agent.transcript import Transcript
    from workflows.failures import RunFailed
    from workflows.pipeline.human import ask_human
    from workflows.pipeline.stop import PipelineStop

Answer = TypeVar("Answer", bound=BaseModel)


@dataclass(frozen=True)
class DecisionNode(Generic[Answer]):
    """What a pipeline asks: ``instructions`` (the system prompt), the ``answer`` model, and
    its defaults; a profile's ``[decisions.<name>]`` overrides threshold, retries, escalation."""

    name: str
    answer: type[Answer]
    instructions: str
    threshold: float = 0.7
    max_invalid: int = 1
    escalate: tuple[str, ...] = (HUMAN,)

    def settings(self, profile: Profile) -> tuple[float, int, list[str]]:
        own = profile.decisions.get(self.name)
        threshold = own.threshold if own and own.threshold is not None else self.threshold
        retries = own.max_invalid if own and own.max_invalid is not None else self.max_invalid
        steps = own.escalate if own and own.escalate is not None else list(self.escalate)
        return threshold, retries, steps


@dataclass
class Decided(Generic[Answer]):
    """A decision node's outcome: the accepted answer (None when a human declined) and its
    record (also in ``RunResult.decisions``)."""

    answer: Answer | None
    record: DecisionNodeRecord


@dataclass
class _Valid:
    answer: dict[str, Any]
    confidence: float
    model: str


class DecisionMaker:
    """Runs decision nodes for one pipeline run."""

    def __init__(self, profile: Profile, ctx: RunContext, on_event: Any) -> None:
        self.profile = profile
        self.ctx = ctx
        self.on_event = on_event

    async def decide(
        self, node: DecisionNode[Answer], question: str, facts: dict[str, Any]
    ) -> Decided[Answer]:
        threshold, retries, steps = node.settings(self.profile)
        record = DecisionNodeRecord(node=node.name, decided_by="none")
        reporter = self.ctx.reporter
        best: _Valid | None = None
        models = [("", self.profile.model)] + [
            (tier, self.profile.tier_model(tier))  # with the tier's own fallbacks
            for tier in steps
            if tier != HUMAN
        ]
        for tier, model in models:
            if tier:
                record.escalations.append(tier)
                reporter.progress(
                    "decision.escalated",
                    f"decision {node.name}: asking tier {tier} ({model.name})",
                    node=node.name,
                    to=tier,
                )
            valid = await self._ask(node, model, question, facts, retries, record)
            if valid is None:
                continue
            best = valid
            if valid.confidence >= threshold:
                return self._accept(node, record, valid, "accepted")
        if HUMAN in steps:
            record.escalations.append(HUMAN)
            return await self._settle(node, record, best, facts, threshold)
        if best is not None:
            return self._accept(node, record, best, "accepted below the threshold (no escalation)")
        tried = ", ".join(m.name for _, m in models)
        raise RunFailed("decision_invalid", f"decision {node.name}: no valid answer from {tried}")

    async def _ask(
        self,
        node: DecisionNode[Answer],
        model: ModelSettings,
        question: str,
        facts: dict[str, Any],
        retries: int,
        record: DecisionNodeRecord,
    ) -> _Valid | None:
        """One model's answer, retried while invalid; None when it never gave a valid one."""
        ctx = self.ctx
        profile = self.profile.model_copy(update={"model": model})
        catalog = [_answer_tool(node)]
        transcript = Transcript()
        transcript.append(
            ChatMessage(role="system", content=node.instructions),
            ChatMessage(role="user", content=_prompt(question, facts)),
        )
        step = ModelStep(profile, ctx.ledger, transcript, ctx.reporter, self.on_event)
        for _ in range(retries + 1):
            cap, stop = before_model_call(
                profile, ctx.limits, ctx.ledger, transcript.state, catalog, ctx.tracker
            )
            if stop is not None:
                raise PipelineStop(stop)
            response = await step.call(catalog, cap)
            calls, _ = with_unique_ids(ctx.ledger.model_calls, response.tool_calls)
            transcript.append(
                ChatMessage(role="assistant", content=response.content, tool_calls=calls)
            )
            answer, confidence, problem = _parse(node, calls)
            at = ctx.ledger.model_calls
            record.attempts.append(
                DecisionAttempt(
                    model=model.name,
                    step=at,
                    valid=problem is None,
                    confidence=confidence,
                    problem=problem,
                )
            )
            if problem is None and answer is not None and confidence is not None:
                return _Valid(answer, confidence, model.name)
            ctx.reporter.progress(
                "decision.invalid",
                f"decision {node.name}: {model.name}'s answer refused: {problem}",
                step=at,
                node=node.name,
            )
            transcript.append(*_corrections(calls, problem or "invalid answer"))
        return None

    def _accept(
        self, node: DecisionNode[Answer], record: DecisionNodeRecord, valid: _Valid, outcome: str
    ) -> Decided[Answer]:
        record.answer, record.confidence, record.model = valid.answer, valid.confidence, valid.model
        record.decided_by, record.outcome, record.at = "model", outcome, workflow.now()
        self._made(record)
        return Decided(node.answer.model_validate(valid.answer), record)

    async def _settle(
        self,
        node: DecisionNode[Answer],
        record: DecisionNodeRecord,
        best: _Valid | None,
        facts: dict[str, Any],
        threshold: float,
    ) -> Decided[Answer]:
        """A human settles it through the run's approval desk (workflows/pipeline/human.py)."""
        proposal = {**best.answer, "confidence": best.confidence} if best else {}
        why = (
            f"{best.model} answered with confidence {best.confidence:.2f}, below {threshold:.2f}"
            if best
            else "no model gave a valid answer"
        )
        verdict = await ask_human(self.ctx, node.name, proposal, facts, why, node.answer)
        record.approval_id, record.outcome, record.at = (
            verdict.approval_id,
            verdict.outcome,
            workflow.now(),
        )
        record.decided_by = "human" if verdict.answer is not None or verdict.rejected else "none"
        kept = best is not None and verdict.answer == best.answer
        record.model = best.model if best is not None and kept else None
        record.confidence = best.confidence if best is not None and kept else None
        record.answer = verdict.answer
        self._made(record)
        if verdict.stop is not None:
            raise PipelineStop(verdict.stop)
        answer = node.answer.model_validate(verdict.answer) if verdict.answer is not None else None
        return Decided(answer, record)

    def _made(self, record: DecisionNodeRecord) -> None:
        self.ctx.state.decisions.append(record)
        shown = json.dumps(record.answer, sort_keys=True) if record.answer is not None else "none"
        self.ctx.reporter.progress(
            "decision.made",
            f"decision {record.node}: {shown} ({record.outcome})",
            node=record.node,
            decided_by=record.decided_by,
            confidence=record.confidence,
        )


def _answer_tool(node: DecisionNode[Any]) -> ToolSpec:
    return ToolSpec(
        server=DECISION_SERVER,
        name=ANSWER_TOOL,
        description=f"Give your answer to the {node.name} decision, with your confidence.",
        input_schema=answer_parameters(node.answer.model_json_schema()),
    )


def _prompt(question: str, facts: dict[str, Any]) -> str:
    shown = json.dumps(facts, indent=2, sort_keys=True, default=str)
    return f"{question}\n\nFacts:\n{shown}\n\nAnswer by calling the `{ANSWER_TOOL}` tool once."


def _parse(
    node: DecisionNode[Any], calls: list[ToolCall]
) -> tuple[dict[str, Any] | None, float | None, str | None]:
    """(answer, confidence, None) for a valid answer, else (…, why it was refused)."""
    answers = [c for c in calls if c.name == ANSWER_TOOL]
    if len(answers) != 1 or len(calls) != 1:
        named = ", ".join(c.name for c in calls) or "no tool"
        return None, None, f"expected exactly one call of {ANSWER_TOOL!r}, got {named}"
    try:
        arguments = json.loads(answers[0].arguments or "{}")
    except json.JSONDecodeError as exc:
        return None, None, f"the arguments are not valid JSON: {exc.msg}"
    if not isinstance(arguments, dict):
        return None, None, "the arguments must be a JSON object"
    confidence = arguments.pop("confidence", None)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        return None, None, "confidence must be a number between 0 and 1"
    if not 0.0 <= float(confidence) <= 1.0:
        return None, float(confidence), "confidence must be between 0 and 1"
    try:
        answer = node.answer.model_validate(arguments).model_dump(mode="json")
    except ValidationError as exc:
        return None, float(confidence), describe_validation_error(exc, "answer").replace("\n", "; ")
    return answer, float(confidence), None


def _corrections(calls: list[ToolCall], problem: str) -> list[ChatMessage]:
    """What the model is told about a refused answer: the error as each call's tool message,
    or (it called no tool) a user message asking for the call."""
    fix = f"call {ANSWER_TOOL} once, with arguments that match its schema"
    content = json.dumps({"error": "invalid_answer", "message": problem, "fix": fix})
    if not calls:
        return [ChatMessage(role="user", content=f"{problem}. Please {fix}.")]
    return [ChatMessage(role="tool", tool_call_id=c.id, content=content) for c in calls]
