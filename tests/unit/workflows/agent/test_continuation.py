"""Continue-as-new without a server: the ``[history]`` settings, the one input a run takes
(an ``AgentInput`` or a ``ContinuedRun``), and the state a ``ContinuedRun`` restores."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import TypeAdapter
from temporalio.contrib.workflow_streams import WorkflowStreamState
from temporalio.exceptions import ApplicationError

from keel.contracts import (
    AgentInput,
    ChatMessage,
    ContinuedRun,
    ConversationState,
    Decision,
    DecisionRecord,
    Guidance,
    HistorySettings,
    Limits,
    Principal,
    Profile,
    RouterState,
    StepRecord,
    is_continued,
)
from keel.contracts.continued import (
    DeskState,
    GuidanceState,
    LedgerState,
    StreamItem,
    StreamState,
    TrackerState,
)
from keel.contracts.errors import ProfileError
from keel.runtime.profiles import load_profile
from workflows.agent.continuation import (
    STREAM_EVENTS_KEPT,
    carried_stream,
    continued_input,
    restored_state,
    restored_tracker,
    stream_state,
)
from workflows.agent.start import parse_input

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PROFILE = Profile.model_validate(
    {"name": "p", "system_prompt": "You help.", "model": {"name": "sim/quick_answer"}}
)


def carried(**fields: object) -> ContinuedRun:
    return ContinuedRun.model_validate({
        "generation": 2, "started_at": NOW, "principal": Principal(id="ana", roles=["agent"]),
        "profile": "p", "resolved": PROFILE, "limits": Limits(max_repeated_calls=5), **fields,
    })  # fmt: skip


# ---------------------------------------------------------------------------- settings


def test_history_defaults_stay_well_below_temporals_limits() -> None:
    settings = HistorySettings()
    assert settings.continue_as_new
    assert settings.continue_after_events < 10_240 and settings.continue_after_bytes < 10_000_000
    assert settings.max_events <= 51_200 // 2 and settings.max_bytes <= 50 * 1024 * 1024 // 2


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("continue_after_events = 30000\nmax_events = 20000",
         "continue_after_events (30,000) must be below max_events (20,000)"),
        ("continue_after_bytes = 5000000\nmax_bytes = 5000000",
         "continue_after_bytes (5,000,000) must be below max_bytes (5,000,000)"),
        ("max_events = 60000", "history.max_events: Input should be less than or equal to 50000"),
        ("continue_after_events = 0", "history.continue_after_events: Input should be greater"),
        ("continue_as_new = 'maybe'", "history.continue_as_new: Input should be a valid boolean"),
        ("max_event = 10", "history.max_event: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_bad_history_settings_are_one_readable_line(
    tmp_path: Path, section: str, expected: str
) -> None:
    (tmp_path / "bad.toml").write_text(
        'system_prompt = "x"\n[model]\nname = "sim/quick_answer"\n'
        "price = { input_per_mtok = 1.0, output_per_mtok = 2.0 }\n[history]\n" + section + "\n"
    )
    with pytest.raises(ProfileError) as info:
        load_profile("bad", [tmp_path])
    assert expected in str(info.value) and "bad.toml" in str(info.value)


def test_without_continue_as_new_the_threshold_need_not_be_below_the_max() -> None:
    settings = HistorySettings(continue_as_new=False, max_events=30)
    assert settings.max_events == 30


# ---------------------------------------------------------------------------- one input


def test_a_run_takes_an_agent_input_or_a_continued_run() -> None:
    agent_input = {"profile": "support", "task": "Hello"}
    assert isinstance(parse_input(agent_input), AgentInput)
    continued = carried().model_dump(mode="json")
    assert is_continued(continued) and not is_continued(agent_input)
    parsed = parse_input(continued)
    assert isinstance(parsed, ContinuedRun) and parsed.generation == 2
    with pytest.raises(ApplicationError) as info:
        parse_input({**continued, "generation": 0})
    assert "input: generation: Input should be greater than or equal to 1" in info.value.message
    with pytest.raises(ApplicationError) as twice:
        parse_input(continued, [continued])
    assert "exactly one input" in twice.value.message


def test_a_continued_run_does_not_carry_the_task_text() -> None:
    assert "task" not in ContinuedRun.model_fields
    assert continued_input({"generation": 0}) is None  # invalid: parse_input reports it
    assert continued_input({"profile": "support", "task": "x"}) is None


# ---------------------------------------------------------------------------- restoring


def test_the_restored_state_is_the_state_carried() -> None:
    step = StepRecord(step=1, kind="model", name="m", started_at=NOW, cost_usd=0.5)
    audit = DecisionRecord(approval_id="apr-1", tool="refund_order", decision="reject", at=NOW)
    decision = Decision(approval_id="apr-1", decision="reject", reason="no", digest="sha256:x")
    conversation = ConversationState(pending=[ChatMessage(role="user", content="hi")], messages=1)
    run = carried(
        ledger=LedgerState(steps=[step], cost_usd=0.5, model_calls=1, tool_calls=2),
        desk=DeskState(accepted={"apr-1": decision}, closed={"apr-1": "rejected"},
                       audit=[audit], bound=True, serials={"apr-1": 1}, next_serial=1,
                       reloaded_kids=["k2", "k1"]),
        guidance=GuidanceState(pending=[Guidance(instruction="go on")], used=1, escalated=True),
        conversation=conversation,
    )  # fmt: skip
    state = restored_state(ContinuedRun.model_validate(run.model_dump(mode="json")))
    assert (state.profile, state.model) == ("p", "sim/quick_answer")
    assert (state.ledger.model_calls, state.ledger.tool_calls, state.ledger.cost_usd) == (1, 2, 0.5)
    assert state.ledger.steps == [step]
    assert state.desk.audit == [audit] and state.desk.bound is True
    assert state.desk.closed == {"apr-1": "rejected"} and state.desk.reloaded_kids == {"k1", "k2"}
    # A repeat of the accepted decision is still recognised (idempotent), in the next run.
    assert state.desk.check(decision, NOW) is None
    assert state.desk.accept(decision) == 2  # serials go on where they were
    assert (state.guidance_used, state.escalated) == (1, True)
    assert [g.instruction for g in state.guidance] == ["go on"]
    assert state.transcript.pending == conversation.pending and state.transcript.state.messages == 1


def test_the_router_state_is_carried_and_restored() -> None:
    routing = RouterState(escalated="strong", reason="escalated after a tool error at step 1",
                          clean_steps=1)  # fmt: skip
    state = restored_state(ContinuedRun.model_validate(
        carried(routing=routing).model_dump(mode="json")
    ))  # fmt: skip
    assert state.routing == routing and state.routing is not routing
    assert restored_state(carried()).routing is None  # no [routing], or a run from before it


def test_the_tracker_goes_on_counting_with_the_carried_limits() -> None:
    run = carried(tracker=TrackerState(call_counts={"get_order:ab": 2}, seen_results=["x"],
                                       idle_steps=1, idle=[(3, "get_order")]))  # fmt: skip
    tracker = restored_tracker(ContinuedRun.model_validate(run.model_dump(mode="json")))
    assert (tracker.max_repeated_calls, tracker.idle_steps) == (5, 1)
    assert tracker.seen_results == {"x"} and tracker.idle == [(3, "get_order")]
    assert tracker.record_call("get_order", {"order_id": "ORD-1"}) == 1  # another fingerprint


def test_the_stream_keeps_its_last_events_and_their_offsets() -> None:
    raw = {"log": [{"topic": "progress", "data": f"e{n}"} for n in range(STREAM_EVENTS_KEPT + 4)],
           "base_offset": 10, "publishers": {}}  # fmt: skip
    state = TypeAdapter(WorkflowStreamState).validate_python(raw)
    kept = carried_stream(state)
    assert len(kept.log) == STREAM_EVENTS_KEPT
    assert kept.base_offset == 14 and kept.log[0].data == "e4"
    prior = stream_state(carried(stream=kept))
    assert isinstance(prior, WorkflowStreamState)
    assert prior.base_offset == 14 and prior.log[-1].data == f"e{STREAM_EVENTS_KEPT + 3}"
    assert stream_state(carried()) is None
    assert stream_state(None) is None
    assert StreamState(log=[StreamItem(topic="t", data="d")]).log[0].offset == 0
