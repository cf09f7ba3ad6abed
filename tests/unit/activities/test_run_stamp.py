"""The worker names the run in every tool call's ``_meta`` (``io.keel/run``), reads too."""

from __future__ import annotations

from typing import Any

from temporalio.worker import ExecuteActivityInput

from activities.mcp import stamp_run
from keel.contracts import names


def call(meta: Any) -> ExecuteActivityInput:
    body = {"name": "get_order", "arguments": {"order_id": "ORD-1042"}, "meta": meta}
    return ExecuteActivityInput(fn=print, args=[body], executor=None, headers={})


def test_every_call_carries_the_workflow_id() -> None:
    keyed = call({names.META_IDEMPOTENCY_KEY: "wf-1:2:c0"})
    stamp_run("wf-1", keyed)
    assert keyed.args[0]["meta"] == {
        names.META_IDEMPOTENCY_KEY: "wf-1:2:c0",
        names.META_RUN: "wf-1",
    }
    child = call({names.META_RUN: "wf-1"})  # a child workflow naming its parent's run
    stamp_run("wf-1-fallback", child)
    assert child.args[0]["meta"] == {names.META_RUN: "wf-1"}
    bare = call(None)
    stamp_run("wf-2", bare)
    assert bare.args[0]["meta"] == {names.META_RUN: "wf-2"}
    assert bare.args[0]["arguments"] == {"order_id": "ORD-1042"}


def test_nothing_is_stamped_outside_a_run() -> None:
    request = call(None)
    stamp_run(None, request)
    assert request.args[0]["meta"] is None
