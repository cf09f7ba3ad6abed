"""The behavioural simulated model on the real stack: free-form questions about the demo store
get answers about *that* order or customer, with the facts the support desk holds.

Runs use fixed workflow ids: the actor's draws are a function of (seed, conversation = workflow
id, turn), so each test is deterministic for the tier the profile names (sim/actor = medium).
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import httpx2
from temporalio.client import Client, WorkflowHandle

from keel.contracts import AgentInput, Principal, RunResult
from keel.stack import Stack
from tests.integration.test_approvals import pending

SESSION = uuid.uuid4().hex[:6]


async def begin(client: Client, profile: str, task: str, name: str) -> WorkflowHandle[Any, Any]:
    agent_input = AgentInput(
        profile=profile, task=task, principal=Principal(id="tester", roles=["agent"])
    )
    return await client.start_workflow(
        "AgentWorkflow",
        agent_input,
        id=f"test-actor-{name}",
        task_queue="agents",
        result_type=RunResult,
    )


async def ask(client: Client, task: str, name: str, profile: str = "support") -> RunResult:
    handle = await begin(client, profile, task, name)
    result: RunResult = await handle.result()
    assert result.status == "completed", result.error
    assert result.final_answer
    return result


def tools_called(result: RunResult) -> list[tuple[str, str]]:
    return [(s.name, s.outcome) for s in result.steps if s.kind == "tool"]


async def test_a_free_form_status_question_is_answered_about_that_order(client: Client) -> None:
    result = await ask(client, "What is the status of ORD-1043 and when will it arrive?", "1043")

    answer = result.final_answer or ""
    assert "ORD-1043" in answer and "shipped" in answer and "18.50 USD" in answer
    assert "2026-11-09" in answer  # shipped_at from the seed
    assert "shipping-times" in answer  # the policy article it relied on
    assert "ORD-1042" not in answer and "Maria" not in answer  # not the scripted story
    assert ("get_order", "ok") in tools_called(result)
    assert result.usage.input_tokens > 0


async def test_another_order_gets_its_own_facts(client: Client) -> None:
    result = await ask(client, "Hi, has my GPS watch from ORD-1050 been delivered?", "1050")

    answer = result.final_answer or ""
    assert "ORD-1050" in answer and "delivered" in answer and "129.99 USD" in answer
    assert "2026-11-04" in answer


async def test_a_customer_found_by_email_gets_their_orders(client: Client) -> None:
    result = await ask(client, "Which orders does james.okafor@example.com have?", "james")

    answer = result.final_answer or ""
    assert "CUS-1002" in answer and "ORD-1050" in answer and "ORD-1051" in answer
    names = [name for name, outcome in tools_called(result) if outcome == "ok"]
    assert "search_customers" in names and "list_orders" in names


async def test_a_policy_question_cites_the_article(client: Client) -> None:
    result = await ask(client, "How many days do I have to return something?", "returns")

    answer = result.final_answer or ""
    assert "returns-process" in answer and "30 days" in answer


async def test_a_refund_beyond_the_agent_limit_is_escalated_not_promised(client: Client) -> None:
    task = "My watch from ORD-1050 is the wrong model, please refund it."
    result = await ask(client, task, "beyond", profile="refunds_actor")

    answer = result.final_answer or ""
    assert "supervisor" in answer and "129.99 USD" in answer
    assert "refund_order" not in [name for name, _ in tools_called(result)]


async def test_a_refund_within_policy_waits_for_approval_with_the_right_amount(
    client: Client, stack: Stack
) -> None:
    with sqlite3.connect(stack.config.support_desk_db) as db:
        paid, refunded = db.execute(
            "SELECT paid_cents, refunded_cents FROM orders WHERE order_id = 'ORD-1040'"
        ).fetchone()
    task = "Hi, I'm Aiko Tanaka (aiko.tanaka@example.com). ORD-1040 arrived dented. Refund?"
    handle = await begin(client, "refunds_actor", task, "approval")
    try:
        [request] = await pending(handle)
        assert request.tool == "refund_order"
        assert request.arguments["order_id"] == "ORD-1040"
        assert request.arguments["amount"] == (paid - refunded) / 100 == 48.0
        assert request.arguments["reason"] == "damaged"
    finally:
        await handle.terminate("test over: nobody decides")


def _chat(stack: Stack, body: dict[str, Any], conversation: str) -> dict[str, Any]:
    response = httpx2.post(
        f"{stack.config.llm_base_url}/chat/completions",
        json=body,
        headers={"X-Keel-Conversation": conversation},
        timeout=10.0,
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_the_same_seed_answers_identically_over_http(stack: Stack) -> None:
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {}}}
        for name in ("get_order", "search_knowledge")
    ]
    body = {
        "model": "sim/actor-small@3",
        "messages": [{"role": "user", "content": "Where is ORD-1049?"}],
        "tools": tools,
    }
    first = [_chat(stack, body, f"det-{n}-{SESSION}") for n in range(12)]
    again = [_chat(stack, body, f"det-{n}-{SESSION}") for n in range(12)]

    def kept(answer: dict[str, Any]) -> Any:
        return answer["choices"], answer["usage"]

    assert [kept(a) for a in first] == [kept(a) for a in again]
    # The small tier's draws differ between conversations: not one fixed answer for all.
    assert len({str(kept(a)) for a in first}) > 1
    models = httpx2.get(f"{stack.config.llm_base_url}/models", timeout=10.0).json()
    ids = {m["id"] for m in models["data"]}
    assert {"sim/actor", "sim/actor-small", "sim/actor-medium", "sim/actor-large"} <= ids
