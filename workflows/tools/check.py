"""The one way a tool call is checked: schema → authorization → semantic.

``CheckPipeline`` is built once per run from the run's catalog, policies and principal, and is
the only code that composes the three layers of :mod:`workflows.tools.validation`:

- the tool turn runs :meth:`~CheckPipeline.schema` on every call first (in call order, between
  the tool-call budget and the repeat counter), then :meth:`~CheckPipeline.complete` on each call
  that passed, all concurrently, so the lookups of a turn run side by side;
- an approver's edited arguments go through :meth:`~CheckPipeline.check` (all three layers);
- the ``decide`` update's validator, which may not do I/O, runs :meth:`~CheckPipeline.schema`
  and refuses an edit that could never pass before it is accepted.

A call refused by any layer never reaches its server; the ``Rejection`` goes back to the model.
Workflow code: the semantic lookups are read-only tool-call activities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import Principal, ServerSettings, ToolCall, ToolPolicy, ToolSpec
    from workflows.failures import RunFailed
    from workflows.tools.mcp_calls import run_lookups
    from workflows.tools.trust import read_only_check
    from workflows.tools.validation import (
        LookupResult,
        PolicyError,
        PreparedCall,
        Rejection,
        Validator,
        check_authorization,
        check_semantics,
        plan_lookups,
    )

AUTHORIZE_FIRST_PATCH = "authorize-before-lookups"


@dataclass(frozen=True)
class CheckedCall:
    """A call that passed every layer, with the results of its semantic lookups (what an
    approver is shown as the call's context)."""

    prepared: PreparedCall
    lookups: dict[str, LookupResult] = field(default_factory=dict)

    def context(self) -> dict[str, object]:
        """The lookups' results by name, for an approval request: the structured data, or
        the raw text of a lookup that answered without any (never a silent ``{}``)."""
        shown: dict[str, object] = {}
        for name, result in self.lookups.items():
            if result.ok and result.data is not None:
                shown[name] = result.data
            elif result.ok and result.text:
                shown[name] = result.text
        return shown


def _authorize_first() -> bool:
    """Authorization before the lookups, except when replaying a history recorded before
    (it ran the lookups of an unauthorized call first). Outside a workflow (unit tests), always."""
    return not workflow.in_workflow() or workflow.patched(AUTHORIZE_FIRST_PATCH)


class CheckPipeline:
    """The three validation layers for one run."""

    def __init__(
        self,
        catalog: list[ToolSpec],
        catalog_all: list[ToolSpec],
        policies: dict[str, ToolPolicy],
        servers: dict[str, ServerSettings],
        principal: Principal,
    ) -> None:
        self._schemas = Validator(catalog)
        self._catalog_all = catalog_all
        self._policies = policies
        self._servers = servers
        self._principal = principal
        self._is_read = read_only_check(servers, policies)

    def schema(self, call: ToolCall) -> PreparedCall | Rejection:
        """Layer 1, pure and synchronous: the tool exists and the arguments fit its schema."""
        return self._schemas.check_schema(call)

    async def complete(self, prepared: PreparedCall) -> CheckedCall | Rejection:
        """Layers 2 and 3 for a call that passed the schema: authorization first (so a
        principal without the role learns nothing the lookups would find, and no lookup runs
        for it), then its lookups and the policy's semantic checks. A broken policy ends the
        run (config_error)."""
        policy = self._policies.get(prepared.call.name)
        refused = check_authorization(prepared, policy, self._principal)
        semantic = policy is not None and bool(policy.checks)
        if refused is not None and (not semantic or _authorize_first()):
            return refused
        lookups: dict[str, LookupResult] = {}
        if policy is not None and semantic:
            outcome = await self._semantics(prepared, policy)
            if isinstance(outcome, Rejection):
                return outcome
            lookups = outcome
        # Only a history recorded before authorization came first gets here refused.
        return refused if refused is not None else CheckedCall(prepared, lookups)

    async def _semantics(
        self, prepared: PreparedCall, policy: ToolPolicy
    ) -> dict[str, LookupResult] | Rejection:
        """The call's lookups, then the policy's semantic checks on their results."""
        try:
            plan = plan_lookups(prepared, policy, self._catalog_all, self._is_read)
            if isinstance(plan, Rejection):
                return plan
            lookups = await run_lookups(plan, self._servers, self._policies, self._principal)
            rejection = check_semantics(prepared, policy, lookups, workflow.now())
        except PolicyError as exc:
            message = f"profile policy for {prepared.call.name!r}: {exc}"
            raise RunFailed("config_error", message) from None
        return rejection if rejection is not None else lookups

    async def check(self, call: ToolCall) -> CheckedCall | Rejection:
        """Every layer, for one call on its own (an approver's edit)."""
        prepared = self.schema(call)
        if isinstance(prepared, Rejection):
            return prepared
        return await self.complete(prepared)
