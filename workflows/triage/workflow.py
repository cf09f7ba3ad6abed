"""``keel.pipeline.refund_triage``: a refund request handled by a hybrid pipeline.

1. deterministic: read the message (order id, an amount asked for, a photo mentioned, who
   writes), look up the order and the customer, refuse an order that is not the writer's;
2. decision node ``claim``: the model classifies the claim (``Claim``) with a confidence —
   an invalid answer is retried, a doubtful one escalates to the profile's stronger tier and
   then to a human (``[decisions.claim]`` in profiles/triage.toml);
3. deterministic: the refund policy decides the amount (workflows/triage/policy.py, with the
   numbers of the profile's ``[parameters]``);
4. ``refund_order`` — which waits for a human's approval like the agent's — then
   ``send_email`` to the customer (also approved: the desk sends no email without a grant).

Start it like an agent run, with the workflow type (``keel run triage "…"`` does)::

    temporal workflow start --type keel.pipeline.refund_triage --task-queue agents \\
      --input '{"profile": "triage", "task": "ORD-1042 arrived with a torn sole"}'
"""

from __future__ import annotations

import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import Profile, RunResult
    from workflows.pipeline.base import PIPELINE_PREFIX, PipelineEnd, PipelineWorkflow
    from workflows.pipeline.decide import DecisionNode
    from workflows.pipeline.steps import Steps, ToolOutcome
    from workflows.triage.policy import (
        Claim,
        Plan,
        Rules,
        owner_mismatch,
        read_request,
        refund_plan,
    )

WORKFLOW_TYPE = PIPELINE_PREFIX + "refund_triage"

CLAIM = DecisionNode(
    name="claim",
    answer=Claim,
    instructions=(
        "You classify customer claims for an online outdoor store's refund desk. Read the"
        " customer's message and the order, and choose the one category that fits best. Be"
        " honest about your confidence: if the message is ambiguous, say so with a low"
        " confidence instead of guessing."
    ),
    threshold=0.7,
    max_invalid=1,
)

ASK_FOR_ORDER = (
    "Which order is it about? Please give me the order number (it looks like ORD-1234), and"
    " I will look into a refund for you."
)


@workflow.defn(name=WORKFLOW_TYPE)
class RefundTriageWorkflow(PipelineWorkflow):
    """See the module docstring."""

    @workflow.run
    async def run(self, request: Any = None, *extra: Any) -> RunResult:
        return await super().run(request, *extra)

    async def pipeline(self, steps: Steps) -> PipelineEnd:
        request = read_request(steps.task)
        if len(request.order_ids) != 1:
            found = ", ".join(request.order_ids)
            return PipelineEnd(
                f"You mentioned {found}: which order is it about?" if found else ASK_FOR_ORDER
            )
        order_id = request.order_ids[0]
        order = await steps.tool("get_order", {"order_id": order_id})
        if not order.ok or not isinstance(order.data, dict):
            return PipelineEnd(f"I could not find order {order_id}. Please check the number.")
        customer = await steps.tool("get_customer", {"customer_id": order.field("customer_id")})
        if isinstance(customer.data, dict) and owner_mismatch(request, customer.data):
            return PipelineEnd(
                f"Order {order_id} is not on your account, so I cannot discuss"
                " or refund it. Please check the order number."
            )
        facts = {"message": steps.task, "order": _order_facts(order)}
        claim = await steps.decide(
            CLAIM, "Which category does this customer's claim fall in?", facts
        )
        if claim.answer is None:
            return PipelineEnd(
                f"A colleague will look at your request about order {order_id} and get back to you."
            )
        plan = refund_plan(order.data, claim.answer, request, rules(steps.profile))
        if plan.action == "none":
            return PipelineEnd(plan.message)
        if plan.action == "human":
            return PipelineEnd(f"{plan.message} A colleague will get back to you about it.")
        return await self._refund(steps, order_id, customer, plan, claim.answer)

    async def _refund(
        self, steps: Steps, order_id: str, customer: ToolOutcome, plan: Plan, claim: Claim
    ) -> PipelineEnd:
        refund = await steps.tool(
            "refund_order",
            {
                "order_id": order_id,
                "amount": plan.amount,
                "reason": plan.reason,
                "note": claim.summary[:500],
            },
            why=plan.message,
        )
        if refund.outcome == "rejected":
            return PipelineEnd(
                f"We could not approve a refund on order {order_id} this time;"
                " a colleague will explain why."
            )
        if not refund.ok:
            return PipelineEnd(
                f"The refund on order {order_id} did not go through: a colleague will follow up.",
                status="failed",
            )
        name = customer.field("name", "there")
        body = (
            f"Hi {name},\n\n{plan.message} It goes back to your original payment method and"
            " should appear within 5-7 business days.\n\nThe support team"
        )
        await steps.tool(
            "send_email",
            {
                "customer_id": customer.field("customer_id") or refund.field("customer_id"),
                "subject": f"Your refund for {order_id}",
                "body": body,
            },
            why=f"confirm the refund of {plan.amount:.2f} USD on {order_id}",
        )
        return PipelineEnd(
            f"Refunded {plan.amount:.2f} USD on order {order_id} ({refund.field('refund_id')});"
            " it should appear within 5-7 business days."
        )


def rules(profile: Profile) -> Rules:
    """The policy's numbers from the profile's ``[parameters]``; ``today`` is the workflow's
    clock unless the profile pins it (the demo store's data is dated: profiles/triage.toml)."""
    given = profile.parameters
    today = (
        datetime.date.fromisoformat(str(given["today"]))
        if "today" in given
        else workflow.now().date()
    )
    return Rules(
        today=today,
        window_days=int(given.get("refund_window_days", 30)),
        agent_limit=float(given.get("agent_refund_limit", 100.0)),
        photo_from=float(given.get("photo_from", 50.0)),
    )


def _order_facts(order: ToolOutcome) -> dict[str, Any]:
    data = order.data if isinstance(order.data, dict) else {}
    keep = ("order_id", "status", "paid", "refundable", "delivered_at", "shipped_at", "items")
    return {key: data.get(key) for key in keep}
