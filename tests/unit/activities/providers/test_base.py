"""Provider error mapping: which HTTP statuses a retry can cure, and ``Retry-After``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.providers.base import http_error, parse_retry_after


def test_status_classification() -> None:
    for status in (408, 409, 429, 500, 502, 503):
        assert http_error(status, "x").non_retryable is False
    for status in (400, 401, 403, 404, 422):
        assert http_error(status, "x").non_retryable is True
    assert parse_retry_after("2.5") == timedelta(seconds=2.5)
    assert parse_retry_after("nonsense") is None


def test_retry_after_http_date_is_a_delay_from_now() -> None:
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("Tue, 01 Dec 2026 12:00:30 GMT", now=now) == timedelta(seconds=30)
    # a date already past means "retry now"; one far ahead is capped like seconds are
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == timedelta(0)
    assert parse_retry_after("Fri, 01 Jan 2027 00:00:00 GMT", now=now) == timedelta(minutes=10)
    assert parse_retry_after("Tue, 01 Dec 2026 25:99:00 GMT", now=now) is None
