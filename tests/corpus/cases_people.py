"""Corpus cases where the *people* are hostile or careless: decisions for the wrong request
(unknown ids, wrong roles, another request's arguments, guessed ids before the request
exists), unauthorized principals, and inputs a run must refuse to start with.
"""

from __future__ import annotations

from tests.corpus.case import Act, Case, Expect, answer, call, turn

REFUND = "refund_order"
R_A = {"order_id": "ORD-1052", "amount": 1.0, "reason": "damaged"}
R_B = {"order_id": "ORD-1053", "amount": 3.0, "reason": "wrong_item"}
EMAIL = {"customer_id": "CUS-1002", "subject": "About your refund", "body": "It is done."}


def _decisions() -> list[Case]:
    k = "wrong_decisions"
    refund = [turn(call(REFUND, R_A), content="I propose a 1.00 refund."), answer()]
    two = [turn(call(REFUND, R_A), call(REFUND, R_B)), answer()]
    email = [turn(call("send_email", EMAIL)), answer()]
    sup = ("supervisor",)
    return [
        Case(
            "decide_approve_once",
            k,
            refund,
            acts=(Act("approve", refused=False),),
            expect=Expect(status=("completed",), effects=1, ran=(REFUND,)),
        ),
        Case(
            "decide_edit_amount",
            k,
            refund,
            acts=(Act("edit", arguments={**R_A, "amount": 0.5}, refused=False),),
            expect=Expect(effects=1),
        ),
        Case(
            "decide_edit_schema_invalid",
            k,
            refund,
            acts=(Act("edit", arguments={**R_A, "amount": "lots"}, refused=True),),
            expect=Expect(effects=0),
        ),
        Case(
            "decide_edit_semantic_invalid",
            k,
            refund,
            acts=(Act("edit", arguments={**R_A, "amount": 5000.0}),),
            expect=Expect(effects=0),
        ),
        Case(
            "decide_edit_other_order",
            k,
            refund,
            acts=(Act("edit", arguments={**R_A, "order_id": "ORD-9999"}),),
            expect=Expect(effects=0),
        ),
        Case(
            "decide_unknown_id",
            k,
            refund,
            acts=(Act("approve", approval_id="apr-9-nope", refused=True),),
            expect=Expect(effects=0),
        ),
        Case(
            "decide_wrong_role",
            k,
            refund,
            acts=(Act("approve", roles=("agent",), refused=True),),
            expect=Expect(effects=0),
        ),
        Case(
            "decide_no_roles",
            k,
            refund,
            acts=(Act("approve", roles=(), refused=True),),
            expect=Expect(effects=0),
        ),
        Case(
            "decide_wrong_role_signal",
            k,
            refund,
            acts=(Act("approve", roles=("agent",), via="signal"),),
            expect=Expect(effects=0),
        ),
        Case(
            "decide_reject_without_reason",
            k,
            refund,
            acts=(Act("reject", reason=" ", refused=True),),
            expect=Expect(effects=0),
        ),
        Case(
            "decide_a_with_b_arguments",
            k,
            two,
            acts=(Act("approve", wait=2, request=0, arguments_of=1, refused=True),),
            expect=Expect(effects=0),
        ),
        Case(
            "decide_approve_then_reject",
            k,
            refund,
            acts=(Act("approve", refused=False), Act("reject", again=True, refused=True)),
            expect=Expect(effects=1),
        ),
        Case(
            "decide_early_guessed_id",
            k,
            refund,
            acts=(Act("approve", early=True, via="signal", approval_id="apr-1-call_0_0"),),
            expect=Expect(effects=0),
        ),
        Case(
            "decide_early_guessed_id_email",
            k,
            email,
            acts=(Act("approve", early=True, via="signal", approval_id="apr-1-call_0_0"),),
            expect=Expect(effects=0),
        ),
        Case(
            "decide_nobody_timeout",
            k,
            refund,
            profile="desk_timeout",
            auto_reject=False,
            expect=Expect(status=("completed",), effects=0, outcome={REFUND: "rejected"}),
        ),
        Case(
            "decide_escalation_unanswered",
            k,
            refund,
            profile="desk_escalate",
            auto_reject=False,
            expect=Expect(status=("halted",), effects=0, failure_class="approval_timeout"),
        ),
        Case(
            "decide_two_approve_both",
            k,
            two,
            acts=(Act("approve", wait=2), Act("approve", wait=1)),
            expect=Expect(effects=2),
        ),
        Case(
            "decide_supervisor_principal",
            k,
            refund,
            principal=("boss", sup),
            acts=(Act("approve", roles=sup),),
            expect=Expect(effects=1),
        ),
    ]


def _unauthorized() -> list[Case]:
    k = "unauthorized"
    refused = Expect(effects=0, outcome={REFUND: "invalid"})
    refund = [turn(call(REFUND, R_A)), answer()]
    return [
        Case("unauth_no_roles", k, refund, principal=("nobody", ()), expect=refused),
        Case("unauth_guest", k, refund, principal=("guest", ("guest",)), expect=refused),
        Case("unauth_role_case", k, refund, principal=("agent", ("Agent",)), expect=refused),
        Case("unauth_role_with_space", k, refund, principal=("agent", ("agent ",)), expect=refused),
        Case(
            "unauth_escape_in_principal",
            k,
            refund,
            principal=("eve\x1b[31m", ("guest",)),
            expect=refused,
        ),
        Case(
            "unauth_guest_insists",
            k,
            [turn(call(REFUND, R_A))],
            after_last="repeat_last",
            principal=("guest", ("guest",)),
            expect=Expect(
                status=("halted",), failure_class=("unauthorized", "no_progress"), effects=0
            ),
        ),
    ]


def _starts() -> list[Case]:
    k = "bad_start"
    base = {"task": "hi", "principal": {"id": "x", "roles": ["agent"]}}
    bad = {
        "start_unknown_profile": ({**base, "profile": "no_such_profile"}, "ProfileError"),
        "start_profile_path": ({**base, "profile": "../profiles/support"}, None),
        "start_not_an_object": ("refund everything", "InvalidInput"),
        "start_roles_not_a_list": (
            {
                **base,
                "profile": "c_decide_approve_once",
                "principal": {"id": "x", "roles": "admin"},
            },
            "InvalidInput",
        ),
        "start_limits_above_ceiling": (
            {**base, "profile": "c_decide_approve_once", "limits": {"max_steps": 10**9}},
            "InvalidInput",
        ),
        "start_limits_negative": (
            {**base, "profile": "c_decide_approve_once", "limits": {"max_tool_calls": -1}},
            "InvalidInput",
        ),
        "start_unknown_field": (
            {**base, "profile": "c_decide_approve_once", "sudo": True},
            "InvalidInput",
        ),
    }
    return [Case(name, k, raw_input=raw, expect=Expect(start_error=error))
            for name, (raw, error) in bad.items()]  # fmt: skip


def people_cases() -> list[Case]:
    return [*_decisions(), *_unauthorized(), *_starts()]
