"""The demo (`make demo`) on the session's stack: the refund story ends with exactly one
refund and one email, approved by a supervisor."""

from __future__ import annotations

import pytest

from keel.demo import run_demo
from keel.stack import Stack


async def test_demo_tells_the_approval_story(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_demo(stack)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "The run waits for a human: 2 irreversible action(s) proposed." in out
    assert "refund_order" in out and "send_email" in out
    assert "--by demo-supervisor --role supervisor" in out
    assert "temporal workflow update execute" in out
    assert "support desk: 1 refund of ORD-1042 and 1 email to Maria from this run" in out
    assert "status: completed" in out
    # Authenticated end to end: the desk verified a grant for each approved call.
    assert (
        "refund_order ran with an approval grant the desk verified (approved by demo-supervisor)"
        in out
    )
    assert (
        "send_email ran with an approval grant the desk verified (approved by demo-supervisor)"
        in out
    )
    # The live progress, worded by the profile's templates (profiles/refunds.toml).
    assert "looking up order ORD-1042…" in out
    assert "waiting for approval: refund_order $" in out
