"""Approval requests, the ``decide`` payload, the audit trail and the update's answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from keel.contracts.profile import Reversibility
from keel.contracts.run import Principal


class ApprovalRequest(BaseModel):
    """A tool call waiting for a human: what, for whom, why, on what, until when."""

    approval_id: str
    workflow_id: str
    step: int
    tool_call_id: str
    tool: str
    server: str
    arguments: dict[str, Any]
    principal: Principal
    reversibility: Reversibility
    reason: str | None = Field(default=None, description="the model's stated reason")
    context: dict[str, Any] = Field(
        default_factory=dict, description="what the call acts on (semantic lookups' results)"
    )
    approver_roles: list[str] = Field(default_factory=list)
    created_at: datetime
    expires_at: datetime
    escalated: bool = False
    digest: str | None = Field(
        default=None,
        description="sha256 of exactly what is approved (server, tool, arguments); a decision"
        " must name it. None only on requests of runs recorded before digests existed",
    )
    identity_required: bool = Field(
        default=False,
        description="the run requires signed decisions (approvals.require_identity): a"
        " decision must carry the decider's identity token",
    )


class Decision(BaseModel):
    """Payload of the ``decide`` signal and update."""

    model_config = ConfigDict(extra="forbid")

    approval_id: str = Field(min_length=1)
    digest: str | None = Field(
        default=None,
        description="the request's digest (ApprovalRequest.digest): what the decider read;"
        " a decision without it, or with another one, is refused",
    )
    decision: Literal["approve", "reject", "edit"]
    arguments: dict[str, Any] | None = None
    reason: str | None = None
    by: str | None = None
    roles: list[str] = Field(
        default_factory=list, description="the decider's roles, checked against approver_roles"
    )
    identity_token: str | None = Field(
        default=None,
        description="the decider's identity token (a JWT from the organisation's issuer,"
        " audience keel-approvals), required when the run requires identity: then ``by`` and"
        " ``roles`` come from it (given ones must agree with it). A bearer credential: never"
        " recorded in the audit trail, logs or progress",
    )


class ApproverIdentity(BaseModel):
    """A decider as their verified identity token names them (never the token itself)."""

    name: str = Field(description="the token's preferred_username, else its sub")
    subject: str = ""
    roles: list[str] = Field(default_factory=list)
    issuer: str
    token_id: str | None = Field(default=None, description="the token's jti")


class ApproverKeys(BaseModel):
    """What a run verifies identity tokens with: the approver issuers' public keys (a JWK
    Set's keys, public members only) and the claims they must carry, loaded by an activity
    (so they are in history and verification replays)."""

    keys: list[dict[str, Any]]
    issuers: list[str]
    audience: str
    roles_claim: str = Field(description="the claim holding the roles (dotted path)")
    sources: list[str] = Field(default_factory=list, description="where they were read")


class DecisionRecord(BaseModel):
    """One entry of the audit trail: who decided what, when, and what came of it."""

    approval_id: str
    tool: str
    decision: Literal["approve", "reject", "edit", "timeout", "refused"]
    by: str | None = None
    at: datetime
    reason: str | None = None
    arguments: dict[str, Any] | None = None
    outcome: str = ""
    digest: str | None = Field(default=None, description="the digest the decision named")
    requested_at: datetime | None = Field(
        default=None, description="when the request was made (time to decision = at - this)"
    )
    step: int | None = None
    identity: ApproverIdentity | None = Field(
        default=None,
        description="the verified decider, when the run requires identity (``by`` is then"
        " its name; on a refusal ``by`` is what the decision claimed)",
    )


class DecisionOutcome(BaseModel):
    """What the ``decide`` update answers."""

    approval_id: str
    accepted: bool
    status: str
    message: str = ""
    run_ended: bool = Field(
        default=False,
        description="the run ended before the decision was carried out to the end (status"
        " says how: run failed, run halted, ...; message why)",
    )
