"""Every name that crosses a boundary, defined once.

Workflow, task queue, message and activity names are what the Temporal CLI, the UI and
recorded histories see; search attributes are what visibility queries filter on; the
``io.keel/*`` keys travel in MCP requests' and results' ``_meta``; the error codes are what an
MCP server answers and a worker recognises. Changing any of them breaks running workflows,
recorded histories or third-party clients, so they live here and nowhere else.

This module imports nothing (not even the rest of ``keel.contracts``): MCP servers depend on
it alone.
"""

from __future__ import annotations

from typing import Final

# ----------------------------------------------------------------------------- Temporal
WORKFLOW_TYPE: Final = "AgentWorkflow"
TASK_QUEUE: Final = "agents"
PIPELINE_PREFIX: Final = "keel.pipeline."
"""Workflow types of hybrid pipelines: ``keel.pipeline.<name>`` (workflows/pipeline/)."""
RUNS_QUERY: Final = (
    f"(WorkflowType = '{WORKFLOW_TYPE}' OR WorkflowType STARTS_WITH '{PIPELINE_PREFIX}')"
)
"""The visibility query of every Keel run: agent runs and pipeline runs."""

QUERY_STATUS: Final = "status"
QUERY_PENDING_APPROVALS: Final = "pending_approvals"
SIGNAL_GUIDE: Final = "guide"
SIGNAL_DECIDE: Final = "decide"
UPDATE_DECIDE: Final = "decide"
# A write whose answer was lost: the query lists them, the signal / update resolves one.
QUERY_UNRESOLVED_CALLS: Final = "unresolved_calls"
SIGNAL_RESOLVE: Final = "resolve"
UPDATE_RESOLVE: Final = "resolve"

ACTIVITY_PROFILE_LOAD: Final = "keel.profile.load"
ACTIVITY_LLM_CHAT: Final = "keel.llm.chat"
ACTIVITY_NOTIFY_WEBHOOK: Final = "keel.notify.webhook"
# The approver issuers' public keys, for runs whose profile requires signed decisions.
ACTIVITY_APPROVER_KEYS: Final = "keel.approvers.keys"

# workflow.patched ids: workflow commands that changed, guarded so recorded runs replay.
# Servers' `approval` / `deduplicates` (an untrusted server's read-only hints not believed).
PATCH_SERVER_TRUST: Final = "keel-server-trust-v1"
# A one-attempt write whose answer was lost waits for `resolve` (it used to fail the run).
PATCH_LOST_ANSWER: Final = "keel-lost-answer-v1"
# A run continues as new at its history threshold and halts (history_limit) at its budget.
PATCH_CONTINUE_AS_NEW: Final = "keel-continue-as-new"

# The progress topic of a run's workflow stream.
PROGRESS_TOPIC: Final = "progress"

# ----------------------------------------------------------------------------- visibility
SA_STATE: Final = "KeelState"
SA_FAILURE_CLASS: Final = "KeelFailureClass"
SA_PROFILE: Final = "KeelProfile"
# Every custom search attribute Keel needs registered on the namespace, with its type.
SEARCH_ATTRIBUTES: Final[dict[str, str]] = {
    SA_STATE: "Keyword",
    SA_FAILURE_CLASS: "Keyword",
    SA_PROFILE: "Keyword",
}

# ----------------------------------------------------------------------------- MCP _meta
# Request _meta: the stable key of one logical tool call ({workflow_id}:{step}:{tool_call_id}).
META_IDEMPOTENCY_KEY: Final = "io.keel/idempotency-key"
# Request _meta, stamped by the worker on every tool call: the run (workflow id) making it. A
# support desk in sandbox mode (evals, mcp_servers/shared/sandbox.py) serves each run from its
# own copy of the database; other servers ignore it.
META_RUN: Final = "io.keel/run"
# Result _meta, stamped by the worker: the attempt that produced it, and its latency.
META_ATTEMPT: Final = "io.keel/attempt"
META_LATENCY_MS: Final = "io.keel/latency-ms"
# Request _meta for the worker only (removed before the call reaches the server): the size a
# tool result is cut to. Result _meta: how many bytes the cut removed.
META_MAX_RESULT_BYTES: Final = "io.keel/max-result-bytes"
META_RESULT_CUT_BYTES: Final = "io.keel/result-cut-bytes"
# Result _meta, set by the worker when it has a content store (a ContentRef as JSON): the
# model's view of the result (the tool message's content and images) and, for a result cut
# to max_result_bytes, the full result. Values a server sent under these keys are dropped.
META_VIEW: Final = "keel/view"
META_CONTENT: Final = "keel/content"

# Request _meta for the worker only (replaced before the call leaves it): the human decision an
# approved call carries ({"id", "digest", "by"}); the worker turns it into an approval grant.
META_APPROVAL: Final = "io.keel/approval"
# Request _meta for the server: the approval grant (a signed JWT, docs/security.md), which a
# tool that requires approval checks before it runs.
META_GRANT: Final = "io.keel/grant"

# ----------------------------------------------------------------------------- tokens
# JWT ``typ`` headers: an access token (RFC 9068), an approval grant, an approver's identity.
# A token of one type is never accepted as another.
TYP_ACCESS_TOKEN: Final = "at+jwt"
TYP_GRANT: Final = "keel-grant+jwt"
# The issuer of the embedded default's tokens (a name, not an authorization server: tokens
# come from the worker and `keel token`, signed with the key under .keel/keys).
LOCAL_ISSUER: Final = "https://keel.invalid/local"
# The audience of approvers' identity tokens (``approvals.require_identity``).
APPROVER_AUDIENCE: Final = "keel-approvals"
# Claims Keel reads or writes besides the registered ones (iss, sub, aud, exp, iat, jti, act,
# scope, client_id): the principal's roles, the run a token or grant is for, and the grant's
# binding to one decision.
CLAIM_ROLES: Final = "roles"
CLAIM_RUN: Final = "keel_run"
CLAIM_SERVER: Final = "keel_server"
CLAIM_TOOL: Final = "keel_tool"
CLAIM_DIGEST: Final = "keel_digest"
CLAIM_APPROVER: Final = "keel_approver"
CLAIM_DECISION: Final = "keel_decision"

# ----------------------------------------------------------------------------- error codes
# JSON-RPC error (implementation-defined band): a duplicate of a call still in progress;
# retry later. Answered by the idempotency ledger, retried by the worker.
MCP_CALL_IN_PROGRESS: Final = -32010

# ApplicationError types that end a run before it starts (workflow failures, not results).
ERROR_INVALID_INPUT: Final = "InvalidInput"
ERROR_PROFILE: Final = "ProfileError"
ERROR_CONFIG: Final = "ConfigError"
ERROR_UPSTREAM_UNAVAILABLE: Final = "UpstreamUnavailable"
# A ``decide`` update refused (unknown request, wrong digest, role, invalid edit): the
# decider's mistake, never retried.
ERROR_DECISION_REFUSED: Final = "DecisionRefused"
ERROR_RESOLVE_REFUSED: Final = "ResolveRefused"
