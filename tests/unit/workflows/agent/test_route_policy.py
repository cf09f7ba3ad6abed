"""The routing policy on its own (workflows/agent/route_policy.py): which tier serves each
kind of step, when a run escalates and steps back down, and when an answer is asked again.
The same rules on the real stack: tests/integration/test_routing.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from keel.contracts import (
    ROUTE_REASONS,
    Profile,
    RouterState,
    RoutingSettings,
    StepRecord,
    route_reason,
)
from workflows.agent.route_policy import (
    ESCALATED_ANSWER,
    FINAL_ANSWER,
    Route,
    RoutingPolicy,
    self_reported_confidence,
)
from workflows.agent.routing import Router, triggers
from workflows.agent.state import Ledger

AT = datetime(2026, 11, 12, tzinfo=UTC)


def policy(**settings: object) -> RoutingPolicy:
    return RoutingPolicy(RoutingSettings.model_validate(settings), RouterState())


LADDER = {"first": "fast", "tools": "fast", "ladder": ["fast", "medium", "strong"]}


# ---------------------------------------------------------------------------- kinds


def test_the_first_step_and_tool_steps_get_their_kinds_tiers() -> None:
    routing = policy(first="strong", tools="fast")
    assert routing.route(1) == Route("strong", "first step")
    assert routing.route(2) == Route("fast", "tool step")
    assert routing.route(7) == Route("fast", "tool step")


def test_an_unset_kind_is_served_by_the_model() -> None:
    routing = policy(tools="fast")
    assert routing.route(1) == Route(None, "first step")
    assert routing.route(2) == Route("fast", "tool step")


# ---------------------------------------------------------------------------- escalation


def test_a_trigger_escalates_one_rung_up_from_the_serving_tier() -> None:
    routing = policy(**LADDER)
    shift = routing.turn_done(routing.route(1), 1, ["validation_refusal"])
    assert shift is not None
    assert (shift.kind, shift.from_tier, shift.to_tier) == ("escalated", "fast", "medium")
    assert routing.route(2) == Route("medium", "escalated after a validation refusal at step 1")
    # a second trouble on medium climbs again
    shift = routing.turn_done(routing.route(2), 2, ["tool_error"])
    assert shift is not None and shift.to_tier == "strong"
    assert routing.route(3) == Route("strong", "escalated after a tool error at step 2")


def test_every_trigger_of_the_turn_is_named() -> None:
    routing = policy(**LADDER)
    routing.turn_done(routing.route(1), 1, ["tool_error", "validation_refusal"], confidence=0.1)
    assert routing.route(2).why == (
        "escalated after a validation refusal and a tool error and a low confidence (0.10)"
        " at step 1"
    )


def test_only_the_triggers_of_escalate_on_escalate() -> None:
    routing = policy(**LADDER, escalate_on=["tool_error"])
    assert routing.turn_done(routing.route(1), 1, ["validation_refusal"], confidence=0.0) is None
    assert routing.route(2) == Route("fast", "tool step")


def test_a_confidence_below_the_floor_escalates_and_one_at_it_does_not() -> None:
    routing = policy(**LADDER, min_confidence=0.6)
    assert routing.turn_done(routing.route(1), 1, [], confidence=0.6) is None
    assert routing.turn_done(routing.route(2), 2, [], confidence=0.59) is not None
    assert routing.route(3).why == "escalated after a low confidence (0.59) at step 2"


def test_the_top_of_the_ladder_and_tiers_off_it_do_not_escalate() -> None:
    routing = policy(first="strong", tools="other", ladder=["fast", "strong"])
    assert routing.turn_done(routing.route(1), 1, ["tool_error"]) is None
    assert routing.turn_done(routing.route(2), 2, ["tool_error"]) is None
    assert routing.route(3) == Route("other", "tool step")
    unrouted = policy(ladder=["fast", "strong"])  # [model] serves: not on the ladder
    assert unrouted.turn_done(unrouted.route(1), 1, ["tool_error"]) is None


def test_a_kind_tier_stronger_than_the_escalation_serves() -> None:
    routing = policy(first="fast", tools="strong", ladder=["fast", "medium", "strong"])
    routing.turn_done(routing.route(1), 1, ["tool_error"])
    assert routing.state.escalated == "medium"
    assert routing.route(2) == Route("strong", "tool step")


# ---------------------------------------------------------------------------- de-escalation


def test_clean_steps_step_down_one_rung_at_a_time_to_the_kinds_tier() -> None:
    routing = policy(**LADDER, deescalate_after=2)
    routing.turn_done(routing.route(1), 1, ["tool_error"])
    routing.turn_done(routing.route(2), 2, ["tool_error"])  # now strong
    assert routing.turn_done(routing.route(3), 3, []) is None  # 1 clean step of 2
    routing.served()
    shift = routing.turn_done(routing.route(4), 4, [])
    assert shift is not None
    assert (shift.kind, shift.from_tier, shift.to_tier) == ("deescalated", "strong", "medium")
    assert routing.route(5) == Route(
        "medium", "de-escalated from strong after 2 clean steps at step 4"
    )
    routing.served()  # the one-off note is spent; the escalation's own reason is back
    assert routing.route(5) == Route("medium", "escalated after a tool error at step 2")
    routing.turn_done(routing.route(5), 5, [])
    shift = routing.turn_done(routing.route(6), 6, [])
    assert shift is not None and shift.to_tier == "fast"
    assert routing.state.escalated is None
    assert routing.route(7) == Route(
        "fast", "de-escalated from medium after 2 clean steps at step 6"
    )
    routing.served()
    assert routing.route(8) == Route("fast", "tool step")


def test_trouble_on_the_escalated_tier_restarts_the_clean_count() -> None:
    routing = policy(first="fast", tools="fast", ladder=["fast", "strong"], deescalate_after=2)
    routing.turn_done(routing.route(1), 1, ["tool_error"])
    routing.turn_done(routing.route(2), 2, [])
    assert routing.state.clean_steps == 1
    assert routing.turn_done(routing.route(3), 3, ["tool_error"]) is None  # at the top
    assert (routing.state.escalated, routing.state.clean_steps) == ("strong", 0)


def test_a_kind_tier_off_the_ladder_is_back_at_once() -> None:
    routing = policy(first="fast", ladder=["fast", "medium", "strong"])  # tools: [model]
    routing.turn_done(routing.route(1), 1, ["tool_error"])
    routing.turn_done(routing.route(2), 2, ["tool_error"])
    assert routing.route(3).tier == "strong"
    shift = routing.turn_done(routing.route(3), 3, [])
    assert shift is not None and shift.to_tier is None
    assert routing.route(4).tier is None


def test_an_escalation_over_the_budget_ends() -> None:
    routing = policy(**LADDER)
    routing.turn_done(routing.route(1), 1, ["tool_error"])
    routing.served(dropped=True)
    assert routing.state == RouterState()
    assert routing.route(2) == Route("fast", "tool step")


# ---------------------------------------------------------------------------- re-asked answers


def test_an_answer_from_a_weaker_tier_is_asked_again_on_the_final_tier() -> None:
    routing = policy(first="fast", tools="fast", final="strong")
    route = routing.reask(routing.route(3), 3, None)
    assert route == Route("strong", "final answer after fast answered at step 3", FINAL_ANSWER)
    shift = routing.reasked(Route("fast", "tool step"), 3, route)
    assert (shift.kind, shift.to_tier) == ("final_answer", "strong")
    assert routing.state == RouterState()  # the final tier is no escalation
    assert routing.reask(Route("strong", "final answer"), 4, None) is None  # it answered


def test_a_tier_as_high_on_the_ladder_as_final_writes_the_answer_itself() -> None:
    routing = policy(**LADDER, final="medium")
    assert routing.reask(Route("strong", "escalated"), 3, None) is None
    assert routing.reask(Route("medium", "escalated"), 3, None) is None
    assert routing.reask(Route("fast", "tool step"), 3, None) is not None
    assert policy(final="strong").reask(Route(None, "first step"), 1, None) == Route(
        "strong", "final answer after [model] answered at step 1", FINAL_ANSWER
    )


def test_a_low_confidence_answer_is_asked_one_rung_up_and_escalates() -> None:
    routing = policy(**LADDER, final="strong")
    served = routing.route(2)
    route = routing.reask(served, 2, 0.2)
    assert route == Route(
        "medium", "escalated after a low confidence (0.20) at step 2", ESCALATED_ANSWER
    )
    shift = routing.reasked(served, 2, route)
    assert (shift.kind, shift.from_tier, shift.to_tier) == ("escalated", "fast", "medium")
    assert routing.state.escalated == "medium"
    # medium's confident answer then goes to the final tier; strong's is the answer
    assert routing.reask(route, 3, 0.9) == Route(
        "strong", "final answer after medium answered at step 3", FINAL_ANSWER
    )


def test_a_low_confidence_answer_at_the_top_is_kept() -> None:
    routing = policy(first="strong", ladder=["fast", "strong"])
    assert routing.reask(routing.route(1), 1, 0.1) is None


def test_without_final_or_doubt_an_answer_is_the_answer() -> None:
    routing = policy(**LADDER)
    assert routing.reask(routing.route(2), 2, None) is None
    assert routing.reask(routing.route(2), 2, 0.9) is None


# ---------------------------------------------------------------------------- confidence


@pytest.mark.parametrize(
    ("text", "confidence"),
    [
        ("The order shipped.\nconfidence: 0.42", 0.42),
        ("Confidence = 42%", 0.42),
        ("**Confidence:** 0.9", 0.9),
        ("- confidence: .5", 0.5),
        ("confidence: 0.2\nno wait\nConfidence: 1", 1.0),  # the last line counts
        ("confidence: 1.5", None),  # outside 0..1
        ("I have confidence: high", None),
        ("my confidence: 0.3 in this", None),  # not a line of its own
        ("", None),
        (None, None),
    ],
)
def test_the_self_reported_confidence_is_a_line_of_the_text(
    text: str | None, confidence: float | None
) -> None:
    assert self_reported_confidence(text) == confidence


# ---------------------------------------------------------------------------- triggers


def tool(step: int, outcome: str, validation: str | None = None) -> StepRecord:
    return StepRecord(step=step, kind="tool", name="get_order", started_at=AT,
                      outcome=outcome, validation=validation)  # type: ignore[arg-type]  # fmt: skip


def test_the_turns_refusals_and_tool_errors_are_its_triggers() -> None:
    ledger = Ledger(
        steps=[
            tool(1, "tool_error"),
            StepRecord(step=2, kind="model", name="m", started_at=AT),
            tool(2, "invalid", "schema: order_id: 1042 is not of type 'string'"),
            tool(2, "ok", "passed"),
        ]
    )
    assert triggers(ledger, 2) == ["validation_refusal"]
    assert triggers(ledger, 1) == ["tool_error"]
    # limits and a human's rejection are not the model's doing
    limited = Ledger(steps=[tool(3, "refused", "limit: max_tool_calls"),
                            tool(3, "rejected", "approval: rejected")])  # fmt: skip
    assert triggers(limited, 3) == []


# ---------------------------------------------------------------------------- settings


PROFILE = {
    "name": "routed",
    "system_prompt": "x",
    "model": {"name": "sim/quick_answer"},
    "tiers": {"fast": {"name": "sim/a"}, "strong": {"name": "sim/b"}},
}


def test_every_tier_routing_names_must_exist_with_the_closest_name() -> None:
    routing = {"first": "fast", "tools": "fsat", "ladder": ["fast", "strnog"]}
    with pytest.raises(ValidationError) as caught:
        Profile.model_validate({**PROFILE, "routing": routing})
    message = str(caught.value)
    assert (
        "routing.tools names tier 'fsat', which [tiers] does not define (defined: fast, strong;"
        " did you mean 'fast'?)" in message
    )
    assert "routing.ladder[1] names tier 'strnog'" in message
    assert "did you mean 'strong'?" in message


def test_summary_and_final_are_checked_too_and_a_good_profile_loads() -> None:
    with pytest.raises(ValidationError, match=r"routing\.summary names tier 'cheap'"):
        Profile.model_validate({**PROFILE, "routing": {"summary": "cheap"}})
    with pytest.raises(ValidationError, match=r"routing\.final names tier 'best'"):
        Profile.model_validate({**PROFILE, "routing": {"final": "best"}})
    profile = Profile.model_validate(
        {**PROFILE, "routing": {"first": "strong", "final": "strong", "ladder": ["fast", "strong"]}}
    )
    assert profile.routing is not None and profile.routing.first == "strong"


def test_a_tier_is_on_the_ladder_once() -> None:
    with pytest.raises(ValidationError, match="fast more than once"):
        RoutingSettings(ladder=["fast", "strong", "fast"])


def test_a_route_names_its_reason() -> None:
    assert route_reason("escalated after a tool error at step 3") == "escalated"
    assert route_reason("de-escalated from strong after 1 clean step at step 4") == "de-escalated"
    assert (
        route_reason("tool step (escalation to strong skipped: over the cost budget)")
        == "tool step"
    )
    assert route_reason("final answer after fast answered at step 2") == "final answer"
    assert route_reason(None) == "unrouted"
    assert route_reason("something else") == "something else"
    assert set(ROUTE_REASONS) >= {"first step", "tool step", "escalated", "de-escalated"}


def test_a_summary_step_is_routed_to_the_summary_tier_and_counted_as_one() -> None:
    routed = Router(Profile.model_validate({**PROFILE, "routing": {"summary": "fast"}}))
    route = routed.summary()
    assert route == Route("fast", "summary of older turns", "summary")
    assert route_reason(route.why) == "summary"
    assert Router(Profile.model_validate({**PROFILE, "routing": {}})).summary() == Route(
        None, "summary of older turns", "summary"
    )
    assert Router(Profile.model_validate(PROFILE)).summary() is None  # no [routing]
    assert Router(Profile.model_validate(PROFILE)).next(1) is None
