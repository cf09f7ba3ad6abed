"""No-progress bookkeeping: what counts as new information after a tool turn.

A tool message the model has not been given before — a result, a validation refusal, a
human's rejection — is news; the identical message again is not. So a rejected write lets
the model answer, while a model that keeps making the same refused call is still stopped.
"""

from __future__ import annotations

from workflows.agent.no_progress import ProgressTracker

REJECTED = '{"error": "rejected_by_human", "message": "alice rejected refund_order"}'
UNKNOWN = '{"error": "invalid_tool_call", "layer": "schema", "message": "Unknown tool"}'
ORDERS = '{"orders": ["ORD-1042", "ORD-1043"]}'


def test_a_rejection_the_model_has_not_seen_is_news() -> None:
    tracker = ProgressTracker(max_repeated_calls=3, max_idle_steps=1)
    tracker.record_turn(1, [("refund_order", REJECTED)])
    assert not tracker.stalled and tracker.idle_steps == 0


def test_a_refusal_the_model_has_not_seen_is_news() -> None:
    tracker = ProgressTracker(max_repeated_calls=3, max_idle_steps=1)
    tracker.record_turn(1, [("check_refund_status", UNKNOWN)])
    assert not tracker.stalled


def test_the_same_refusal_again_is_not_and_the_reason_names_call_and_steps() -> None:
    tracker = ProgressTracker(max_repeated_calls=10, max_idle_steps=3)
    for step in range(1, 5):
        assert not tracker.stalled, step
        tracker.record_turn(step, [("check_refund_status", UNKNOWN)])
    assert tracker.stalled and tracker.idle_steps == 3
    assert tracker.reason == (
        "3 consecutive steps added no new information (steps 2, 3, 4: check_refund_status"
        " answered only what the model had already been told; max_idle_steps=3)"
    )


def test_results_seen_before_are_idle_and_news_resets_the_count() -> None:
    tracker = ProgressTracker(max_repeated_calls=10, max_idle_steps=2)
    tracker.record_turn(1, [("list_orders", ORDERS)])
    tracker.record_turn(2, [("list_orders", ORDERS)])
    assert tracker.idle_steps == 1
    tracker.record_turn(3, [("list_orders", ORDERS), ("refund_order", REJECTED)])
    assert tracker.idle_steps == 0  # the rejection was news
    tracker.record_turn(4, [("refund_order", REJECTED)])
    tracker.record_turn(5, [("list_orders", ORDERS)])
    assert tracker.stalled
    assert "steps 4, 5: list_orders, refund_order answered only" in (tracker.reason or "")


def test_reset_forgets_the_idle_run_but_not_what_was_seen() -> None:
    tracker = ProgressTracker(max_repeated_calls=10, max_idle_steps=2)
    tracker.record_turn(1, [("list_orders", ORDERS)])
    tracker.record_turn(2, [("list_orders", ORDERS)])
    tracker.reset()
    assert (tracker.idle_steps, tracker.idle, tracker.reason) == (0, [], None)
    tracker.record_turn(3, [("list_orders", ORDERS)])
    assert tracker.idle_steps == 1  # still seen before
