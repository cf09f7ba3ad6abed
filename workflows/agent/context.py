"""Context budgets: keep each model step's prompt inside ``[context] max_input_tokens``.

Workflow code (deterministic). Before each model step ``ContextKeeper.before_step`` decides
the ``ContextView`` the model activity applies to the assembled conversation: older tool
results trimmed to stubs, then, if that is not enough, older turns replaced by a summary that
the summary tier (``[routing] summary``, else ``[model]``) writes in a model step of its own
(purpose ``summary``, its own step record and cost, budget-checked like any step). The rules
are in workflows/agent/context_plan.py; what is kept per message in context_meta.py.

If even the most trimmed view is over the budget the step goes on with it and its note says
so: the context budget shapes the prompt, the run's token and cost budgets stop the run. A
summary that does not fit the run's budgets (or would take its last step) is skipped, and the
step's own budget check then halts the run if it does not fit either. A profile without
``[context]`` sends the whole conversation, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import (
        ContextSettings,
        ContextState,
        ContextView,
        ConversationState,
        Profile,
        SummaryTask,
        ToolSpec,
    )
    from workflows.agent.budget import estimate_prompt_tokens
    from workflows.agent.context_plan import (
        TrimPlan,
        pinned_facts,
        plan_trim,
        request_bytes,
        spans,
        summary_header,
        summary_instruction,
        summary_message,
        summary_range,
        turns_in,
        worth_summarizing,
    )
    from workflows.agent.model_step import ModelStep, before_model_call
    from workflows.agent.routing import Route
    from workflows.agent.state import RunContext
    from workflows.tools.trust import tool_class


@dataclass(frozen=True)
class _Summary:
    """A summary step about to be taken: its task, the turns it replaces, the summary
    message's header and pinned facts, the tier that writes it and its output cap."""

    task: SummaryTask
    turns: int
    header: str
    pinned: list[str]
    tier: str | None
    cap: int


class ContextKeeper:
    """Keeps one run's conversation inside its context budget (see the module docstring)."""

    def __init__(self, profile: Profile, ctx: RunContext | None = None) -> None:
        self.profile = profile
        self.ctx = ctx
        self.settings: ContextSettings | None = profile.context
        # A run whose messages were sent before it kept records (a history recorded before
        # context budgets) goes on whole.
        self.active = (
            self.settings is not None and ctx is not None and ctx.state.transcript.keep_context()
        )

    async def before_step(
        self, model: ModelStep, catalog: list[ToolSpec]
    ) -> tuple[ContextView | None, str | None]:
        """The view of the next step and a note for its step record; (None, None): whole."""
        if not self.active or self.settings is None:
            return None, None
        conversation = model.transcript.state
        plan = plan_trim(conversation, self.settings, catalog)
        conversation.context = plan.state
        step = model.ledger.model_calls + 1
        if plan.trimmed:
            model.reporter.progress(
                "context.trimmed",
                f"step {step}: {len(plan.trimmed)} tool result(s) trimmed for the context budget",
                step=step, trimmed=plan.trimmed, tokens=plan.tokens,
            )  # fmt: skip
        tokens, why = plan.tokens, None
        if tokens > self.settings.max_input_tokens and self.settings.summarize:
            why = await self._summarize(model, plan, catalog)
            tokens = estimate_prompt_tokens(conversation, catalog)
        state = conversation.context
        assert state is not None
        return state.view(), self._note(state, plan, tokens, why)

    async def _summarize(
        self, model: ModelStep, plan: TrimPlan, catalog: list[ToolSpec]
    ) -> str | None:
        """One summary step over the oldest turns; None when it ran, else why it did not."""
        planned = self._plan_summary(model, plan, catalog)
        if isinstance(planned, str):
            return planned
        state, step = plan.state, model.ledger.model_calls + 1
        task, turns = planned.task, planned.turns
        view = (state.view() or ContextView()).model_copy(update={"summarize": task})
        span = f"messages {task.start}-{task.end - 1} ({turns} turns)"
        response = await model.call(
            [], planned.cap, route=Route(planned.tier, "summary"), view=view, purpose="summary",
            note=f"context: summarizing {span} for step {step + 1}",
        )  # fmt: skip
        text = (response.content or "").strip()
        if not text:
            return f"the summary step ({step}) answered no text"
        model.transcript.state.context = state.model_copy(
            update={"summary": summary_message(planned.header, text, planned.pinned),
                    "summarized": (task.start, task.end), "summary_step": step}
        )  # fmt: skip
        model.reporter.progress(
            "context.summarized", f"step {step}: {span} summarized", step=step,
            start=task.start, end=task.end, turns=turns, pinned=len(planned.pinned),
        )  # fmt: skip
        return None

    def _plan_summary(
        self, model: ModelStep, plan: TrimPlan, catalog: list[ToolSpec]
    ) -> _Summary | str:
        """The summary step to take, or why none is taken (it would not help, or not fit)."""
        assert self.settings is not None and self.ctx is not None
        state, ledger, limits = plan.state, model.ledger, self.ctx.limits
        found = summary_range(state.meta, state, plan.kept_from)
        if found is None:
            return "nothing older than the kept turns to summarize"
        start, end = found
        turns = turns_in(state.meta, start, end)
        pinned = pinned_facts(state.meta, start, end, ledger.steps, self._is_write(catalog))
        header = summary_header(turns, start, end, ledger.model_calls + 1)
        if not worth_summarizing(state, start, end, summary_message(header, "", pinned),
                                 self.settings.summary_tokens):  # fmt: skip
            return f"a summary of messages {start}-{end - 1} would not be shorter"
        if ledger.model_calls + 2 > limits.max_steps:
            return "no step left for a summary before the step limit"
        instruction = summary_instruction(self.settings.summary_tokens)
        tier = self.profile.routing.summary if self.profile.routing else None
        size = request_bytes(state, start, end, instruction)
        cap, stop = before_model_call(
            self.profile, limits, ledger, ConversationState(messages=2, text_bytes=size), [],
            self.ctx.tracker, self.profile.tier_model(tier),
        )  # fmt: skip
        if stop is not None or cap is None:
            return f"summary skipped: {stop.message if stop else 'no output allowed'}"
        task = SummaryTask(start=start, end=end, instruction=instruction)
        return _Summary(task, turns, header, pinned, tier, min(cap, self.settings.summary_tokens))

    def _is_write(self, catalog: list[ToolSpec]) -> Callable[[str], bool]:
        """Whether a tool is an action (not a read) by the profile's word and the annotations
        Keel believes (workflows/tools/trust.py); an unknown tool counts as an action."""
        tools = {t.name: t for t in catalog}
        servers = {s.name: s for s in self.profile.servers}

        def is_write(name: str) -> bool:
            tool = tools.get(name)
            server = servers.get(tool.server) if tool is not None else None
            if tool is None or server is None:
                return True
            return tool_class(tool, server, self.profile.tools.get(name)) != "read"

        return is_write

    def _note(
        self, state: ContextState, plan: TrimPlan, tokens: int, why: str | None
    ) -> str | None:
        """What the step record says of the view (None: the whole conversation was sent)."""
        assert self.settings is not None
        if not state.trimmed and state.summarized is None:
            return None
        parts = [f"~{tokens:,} of {self.settings.max_input_tokens:,} tokens"]
        start, end = state.summarized or (0, 0)
        shown = [i for i in state.trimmed if not start <= i < end]
        if shown:
            new = [i for i in plan.trimmed if i in shown]
            fresh = f"; new: {spans(new)}" if new and len(new) < len(shown) else ""
            parts.append(f"{len(shown)} tool results trimmed (messages {spans(shown)}{fresh})")
        if state.summarized is not None:
            parts.append(f"messages {start}-{end - 1} summarized at step {state.summary_step}")
        if tokens > self.settings.max_input_tokens:
            parts.append("still over max_input_tokens: " + (why or "nothing more to trim"))
        return "context: " + "; ".join(parts)
