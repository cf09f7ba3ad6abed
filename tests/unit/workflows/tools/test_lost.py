"""The lost-answer desk (pure): which call a resolve names, and what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from keel.contracts import Resolution, UnresolvedCall
from workflows.tools.lost import LostAnswers, ResolutionError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def lost(*keys: str) -> LostAnswers:
    desk = LostAnswers()
    for key in keys:
        desk.pending[key] = UnresolvedCall(
            idempotency_key=key, step=1, tool_call_id=key, tool="send_email",
            server="desk", error="timed out", since=NOW,
        )  # fmt: skip
    return desk


def test_the_only_unresolved_call_needs_no_key() -> None:
    desk = lost("wf:1:a")
    outcome = desk.accept(Resolution(action="retry"))
    assert (outcome.idempotency_key, outcome.action, outcome.tool) == (
        "wf:1:a", "retry", "send_email",
    )  # fmt: skip
    with pytest.raises(ResolutionError, match="'wf:1:a' is already resolved"):
        desk.check(Resolution(action="abort", idempotency_key="wf:1:a"))


@pytest.mark.parametrize(
    ("keys", "key", "expected"),
    [
        ((), None, "no call of this run is waiting for resolve"),
        (("wf:1:a", "wf:1:b"), None, "2 calls are unresolved: name one"),
        (("wf:1:a",), "wf:9:z", "call 'wf:9:z' is not unresolved (unresolved: wf:1:a)"),
    ],
)
def test_refused_resolutions_say_why(keys: tuple[str, ...], key: str | None, expected: str) -> None:
    with pytest.raises(ResolutionError) as info:
        lost(*keys).check(Resolution(action="abort", idempotency_key=key))
    assert expected in str(info.value)


def test_confirm_states_the_result() -> None:
    with pytest.raises(ValidationError, match="confirm needs the result"):
        Resolution(action="confirm", result=" ")
    assert Resolution(action="confirm", result='{"sent": true}').result == '{"sent": true}'
