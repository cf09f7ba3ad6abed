"""What a failed model call still costs: an answer over the payload limit was paid for, and its
usage (carried in the error's details) is counted; other failures carry none."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError

from keel.contracts import Usage
from workflows.agent.model_step import paid_usage


def activity_error(cause: BaseException) -> ActivityError:
    error = ActivityError("activity failed", scheduled_event_id=1, started_event_id=2,
                          identity="w", activity_type="keel.llm.chat", activity_id="1",
                          retry_state=None)  # fmt: skip
    error.__cause__ = cause
    return error


def test_an_oversized_answer_is_still_paid_for() -> None:
    usage = Usage(input_tokens=12, output_tokens=750_000)
    cause = ApplicationError("too big", usage.model_dump(), type="PayloadTooLarge")
    assert paid_usage(activity_error(cause)) == usage


def test_other_failures_and_unreadable_details_cost_nothing() -> None:
    assert paid_usage(activity_error(ApplicationError("HTTP 500", type="LLMHttpError"))) is None
    assert paid_usage(activity_error(ApplicationError("big", type="PayloadTooLarge"))) is None
    odd = ApplicationError("big", {"input_tokens": "many"}, type="PayloadTooLarge")
    assert paid_usage(activity_error(odd)) is None
