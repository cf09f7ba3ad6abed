"""A decision node's answer parsing and settings (workflows/pipeline/decide.py), and the
``answer`` tool's parameters (keel/contracts/decisions.py)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from keel.contracts import DecisionSettings, Profile, ToolCall, answer_parameters
from workflows.pipeline.decide import DecisionNode, _parse
from workflows.triage.policy import Claim

NODE = DecisionNode(name="claim", answer=Claim, instructions="classify")


def call(arguments: object, name: str = "answer") -> ToolCall:
    return ToolCall(id="c1", name=name, arguments=json.dumps(arguments))


def test_a_valid_answer_is_split_from_its_confidence() -> None:
    answer, confidence, problem = _parse(
        NODE, [call({"category": "damaged", "summary": "torn", "confidence": 0.8})]
    )
    assert (answer, confidence, problem) == ({"category": "damaged", "summary": "torn"}, 0.8, None)


@pytest.mark.parametrize(
    ("calls", "problem"),
    [
        ([], "expected exactly one call of 'answer', got no tool"),
        ([call({}, name="get_order")], "expected exactly one call of 'answer', got get_order"),
        ([call({"category": "damaged", "summary": "s"})], "confidence must be a number"),
        ([call({"category": "damaged", "summary": "s", "confidence": 1.5})], "between 0 and 1"),
        ([call({"category": "damaged", "summary": "s", "confidence": True})], "must be a number"),
        ([call({"category": "broken", "summary": "s", "confidence": 0.9})], "answer: category"),
        ([call({"category": "damaged", "confidence": 0.9})], "answer: summary: Field required"),
        ([call(["not", "an", "object"])], "must be a JSON object"),
    ],
)
def test_an_invalid_answer_says_why(calls: list[ToolCall], problem: str) -> None:
    answer, _, why = _parse(NODE, calls)
    assert answer is None
    assert why is not None and problem in why


def test_malformed_json_is_an_invalid_answer() -> None:
    bad = ToolCall(id="c1", name="answer", arguments='{"category": ')
    assert "not valid JSON" in (_parse(NODE, [bad])[2] or "")


def test_the_answer_tool_requires_a_confidence_and_keeps_the_schema() -> None:
    parameters = answer_parameters(Claim.model_json_schema())
    assert parameters["required"] == ["category", "summary", "confidence"]
    assert parameters["properties"]["confidence"]["maximum"] == 1.0
    assert "damaged" in parameters["properties"]["category"]["enum"]
    assert "title" not in parameters


def profile(**decisions: object) -> Profile:
    return Profile.model_validate({
        "name": "p", "system_prompt": "x", "model": {"name": "m"},
        "tiers": {"strong": {"name": "big"}}, "decisions": decisions,
    })  # fmt: skip


def test_the_profile_overrides_the_nodes_defaults() -> None:
    assert NODE.settings(profile()) == (0.7, 1, ["human"])
    custom = profile(claim={"threshold": 0.9, "max_invalid": 0, "escalate": ["strong"]})
    assert NODE.settings(custom) == (0.9, 0, ["strong"])


def test_escalation_must_name_a_tier_and_end_with_the_human() -> None:
    with pytest.raises(ValidationError, match="names tier 'huge', which \\[tiers\\] does not"):
        profile(claim={"escalate": ["huge"]})
    with pytest.raises(ValidationError, match="'human' can only be the last"):
        DecisionSettings(escalate=["human", "strong"])
