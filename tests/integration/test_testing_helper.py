"""``keel.testing.LocalStack`` used exactly as a user's test suite would use it.

The profiles and scenarios below are written to a temporary directory, as a user keeps their
own next to their tests; nothing of tests/profiles is used. One stack serves the module (the
way a user shares one per session); the last test starts and leaves a stack of its own to
check that nothing is left behind.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

import keel
from keel.procs import pid_alive
from keel.testing import LocalStack

PRICE = "price = { input_per_mtok = 0.15, output_per_mtok = 0.60 }"

LOOKUP_PROFILE = f"""
system_prompt = "You tell customers where their orders are."
[model]
name = "sim/where_is_my_order"
{PRICE}
[[servers]]
name = "support_desk"
trusted = true        # a Keel server: believe its annotations
deduplicates = true   # and it honours the idempotency key
tools = ["get_order"]
[limits]
max_steps = 4
"""

LOOKUP_SCENARIO = """
[[turns]]
content = "Let me look that order up."
[[turns.tool_calls]]
name = "get_order"
arguments = { order_id = "ORD-1043" }

[[turns]]
content = "ORD-1043 has shipped and is on its way to you."
"""

REFUND_PROFILE = f"""
system_prompt = "You refund damaged items under the policy."
[model]
name = "sim/small_refund"
{PRICE}
[[servers]]
name = "support_desk"
trusted = true        # a Keel server: believe its annotations
deduplicates = true   # and it honours the idempotency key
tools = ["get_order", "refund_order"]
[approvals]
approver_roles = ["supervisor"]
"""

REFUND_SCENARIO = """
[[turns]]
content = "The item arrived damaged; I propose a refund of 10.00."
[[turns.tool_calls]]
name = "refund_order"
arguments = { order_id = "ORD-1048", amount = 10.0, reason = "damaged" }

[[turns]]
content = "Your refund of 10.00 has been issued."
"""

# Same name as a bundled scenario: the user's file must win.
QUICK_ANSWER_SCENARIO = """
[[turns]]
content = "Answered by the user's own quick_answer scenario."
"""

QUICK_PROFILE = f"""
system_prompt = "You answer briefly."
[model]
name = "sim/quick_answer"
{PRICE}
"""


def write_agents(root: Path) -> tuple[Path, Path]:
    """A user's profile and scenario directories."""
    profiles, scenarios = root / "profiles", root / "scenarios"
    profiles.mkdir()
    scenarios.mkdir()
    (profiles / "order_status.toml").write_text(LOOKUP_PROFILE)
    (profiles / "refunder.toml").write_text(REFUND_PROFILE)
    (profiles / "brief.toml").write_text(QUICK_PROFILE)
    (scenarios / "where_is_my_order.toml").write_text(LOOKUP_SCENARIO)
    (scenarios / "small_refund.toml").write_text(REFUND_SCENARIO)
    (scenarios / "quick_answer.toml").write_text(QUICK_ANSWER_SCENARIO)
    return profiles, scenarios


@pytest_asyncio.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    profiles, scenarios = write_agents(tmp_path_factory.mktemp("agents"))
    home = tmp_path_factory.mktemp("keel-home")  # kept by pytest: logs under home/logs
    async with LocalStack(profiles=profiles, scenarios=scenarios, home=home) as stack:
        yield stack


async def test_a_scripted_run_reaches_its_result(env: LocalStack) -> None:
    result = await env.run("order_status", "Where is ORD-1043?")

    assert result.status == "completed", result.error
    assert result.final_answer == "ORD-1043 has shipped and is on its way to you."
    assert result.model == "sim/where_is_my_order"
    tools = [(s.name, s.outcome) for s in result.steps if s.kind == "tool"]
    assert tools == [("get_order", "ok")]
    assert result.tool_calls == 1


async def test_a_user_scenario_wins_over_a_bundled_one_of_the_same_name(env: LocalStack) -> None:
    result = await env.run("brief", "Hello?")

    assert result.final_answer == "Answered by the user's own quick_answer scenario."


async def test_limits_are_passed_to_the_run(env: LocalStack) -> None:
    result = await env.run(
        "order_status", "Where is ORD-1043?", limits=keel.LimitOverrides(max_steps=1)
    )

    assert result.status == "halted"
    assert result.model_calls == 1


async def test_shipped_profiles_stay_available(env: LocalStack) -> None:
    result = await env.run("support", "Where is ORD-1043?")

    assert result.status == "completed", result.error


async def test_an_approval_is_waited_for_and_decided(env: LocalStack) -> None:
    handle = await env.start(
        "refunder", "My ORD-1048 arrived damaged.", principal=keel.Principal(id="alice")
    )

    requests = await env.wait_for_approvals(handle)
    assert [(r.tool, r.arguments["order_id"]) for r in requests] == [("refund_order", "ORD-1048")]
    decision = keel.Decision(
        approval_id=requests[0].approval_id, decision="approve", by="bob", roles=["supervisor"]
    )
    outcome = await keel.decide(env.client, handle.id, decision)
    result = await handle.result()

    assert outcome.accepted
    assert result.status == "completed", result.error
    assert [(a.decision, a.by) for a in result.approvals] == [("approve", "bob")]
    with sqlite3.connect(env.stack.config.support_desk_db) as db:
        refunds = db.execute("SELECT amount_cents FROM refunds WHERE order_id = 'ORD-1048'")
        assert refunds.fetchall() == [(1000,)]


async def test_an_unknown_profile_is_refused_before_anything_starts(env: LocalStack) -> None:
    with pytest.raises(keel.ProfileError, match="order_status"):
        await env.start("order_statis", "Where is ORD-1043?")


async def test_the_settings_and_client_reach_the_same_stack(env: LocalStack) -> None:
    agent_input = keel.build_input(
        {"profile": "brief", "task": "Hello?", "principal": {"id": "carol"}}, env.settings
    )
    handle = await keel.start_run(env.client, env.settings, agent_input)
    result = await keel.follow(handle, lambda status: None)

    assert env.settings.temporal_address == env.stack.config.temporal_address
    assert result.final_answer == "Answered by the user's own quick_answer scenario."


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(keel.ConfigError, match="nowhere"):
        LocalStack(profiles=tmp_path / "nowhere")


def test_relative_directories_are_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker runs in Keel's own directory, not the test's: a relative path must not
    reach it as written."""
    (tmp_path / "agents").mkdir()
    monkeypatch.chdir(tmp_path)

    stack = LocalStack(profiles="agents", scenarios=["agents"])

    assert stack.profile_dirs == [tmp_path.resolve() / "agents"]
    assert stack.scenario_dirs == [tmp_path.resolve() / "agents"]


async def test_the_block_leaves_nothing_behind(tmp_path: Path) -> None:
    async with LocalStack() as stack:
        result = await stack.run("support", "Where is ORD-1043?")
        home = stack.stack.config.home
        pids = {name: stack.stack.running_pid(name) for name in ("temporal", "worker")}

    assert result.status == "completed", result.error
    assert all(pid is not None for pid in pids.values())
    assert not home.exists()
    assert not any(pid_alive(pid) for pid in pids.values() if pid is not None)
