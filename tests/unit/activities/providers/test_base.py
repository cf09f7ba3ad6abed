"""Provider error mapping: which HTTP statuses a retry can cure, and ``Retry-After``."""

from __future__ import annotations

from datetime import timedelta

from activities.providers.base import http_error, parse_retry_after


def test_status_classification() -> None:
    for status in (408, 409, 429, 500, 502, 503):
        assert http_error(status, "x").non_retryable is False
    for status in (400, 401, 403, 404, 422):
        assert http_error(status, "x").non_retryable is True
    assert parse_retry_after("2.5") == timedelta(seconds=2.5)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
