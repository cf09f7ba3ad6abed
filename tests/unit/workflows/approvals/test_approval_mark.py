"""The mark an approved call carries to the worker (io.keel/approval): the digest it names is
what the human approved, so the worker's grant check compares what is sent with that."""

from __future__ import annotations

from keel.contracts import approval_digest
from tests.unit.workflows.approvals.test_desk import ARGUMENTS, DIGEST, decision, request
from workflows.approvals.wait import approval_mark


def test_an_approval_names_the_digest_the_approver_decided_on() -> None:
    sent = {**ARGUMENTS, "amount": 99.0}  # whatever the arguments about to be sent are
    mark = approval_mark(request(), decision(by="alice"), sent)
    assert mark == {"id": "apr-0123456789abcdef0123", "digest": DIGEST, "by": "alice"}
    assert approval_digest("desk", "refund_order", sent) != mark["digest"]  # the worker refuses


def test_an_edit_names_the_digest_of_the_edited_arguments() -> None:
    edited = {**ARGUMENTS, "amount": 10.0}
    mark = approval_mark(request(), decision(decision="edit", arguments=edited), edited)
    assert mark["digest"] == approval_digest("desk", "refund_order", edited) != DIGEST
