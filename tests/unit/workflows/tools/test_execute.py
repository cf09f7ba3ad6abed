"""What a failed one-attempt write means, and how a tool's answer reads in a step record."""

from __future__ import annotations

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

from workflows.tools.execute import answer_lost, detail_line


def failed_with(cause: BaseException) -> ActivityError:
    error = ActivityError(
        "activity failed", scheduled_event_id=5, started_event_id=6, identity="w",
        activity_type="temporalio.mcp.desk.call-tool", activity_id="7",
        retry_state=RetryState.MAXIMUM_ATTEMPTS_REACHED,
    )  # fmt: skip
    error.__cause__ = cause
    return error


def test_a_timeout_or_a_broken_connection_may_have_hidden_an_effect() -> None:
    assert answer_lost(failed_with(TimeoutError("", type=TimeoutType.START_TO_CLOSE,
                                                last_heartbeat_details=[])))  # fmt: skip
    assert answer_lost(failed_with(ApplicationError("refused", type="MCPServerUnavailable")))


def test_an_answer_too_large_to_deliver_was_an_answer_nobody_saw() -> None:
    too_big = ApplicationError("too big", type="PayloadTooLarge", non_retryable=True)
    assert answer_lost(failed_with(too_big))


def test_a_server_that_answered_with_a_refusal_lost_nothing() -> None:
    invalid = ApplicationError("invalid params", -32602, type="MCPProtocolError",
                               non_retryable=True)  # fmt: skip
    assert not answer_lost(failed_with(invalid))


def test_a_multi_line_answer_is_one_line_in_the_record() -> None:
    assert detail_line("") == ""
    assert detail_line("ok") == "ok"
    assert (
        detail_line("Order shipped\nTracking: 1Z\n\nETA: Friday") == "Order shipped (+2 more lines)"
    )
    assert len(detail_line("x" * 500)) == 200


def test_a_traceback_answer_shows_the_error_it_names() -> None:
    text = (
        "Traceback (most recent call last):\n  File \"/srv/app.py\", line 12\nKeyError: 'ACC-0500'"
    )
    line = detail_line(text)
    assert line.startswith("KeyError: 'ACC-0500'")
    assert "Traceback" not in line and "\n" not in line
