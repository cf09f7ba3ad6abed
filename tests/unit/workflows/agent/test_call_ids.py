"""Tool-call ids made unique within their turn before the conversation holds them."""

from __future__ import annotations

from keel.contracts import ToolCall
from workflows.agent.call_ids import Renamed, unique_ids, with_unique_ids


def calls(*ids: str) -> list[ToolCall]:
    return [
        ToolCall(id=i, name="refund_order", arguments=f'{{"n": {n}}}') for n, i in enumerate(ids)
    ]


def test_distinct_ids_are_kept_as_they_are() -> None:
    original = calls("a", "b", "c")
    assert unique_ids(3, original) == (original, [])
    assert with_unique_ids(3, original)[0] is original


def test_a_repeated_id_is_renamed_by_step_and_position_the_first_keeps_it() -> None:
    unique, renamed = unique_ids(2, calls("dup", "dup", "x", "dup"))
    assert [c.id for c in unique] == ["dup", "keel-2-1", "x", "keel-2-3"]
    assert renamed == [Renamed(1, "dup", "keel-2-1"), Renamed(3, "dup", "keel-2-3")]
    assert [c.arguments for c in unique] == [f'{{"n": {n}}}' for n in range(4)]  # same calls


def test_a_missing_id_is_renamed() -> None:
    unique, renamed = unique_ids(1, calls("", "  ", "b"))
    assert [c.id for c in unique] == ["keel-1-0", "keel-1-1", "b"]
    assert [r.original for r in renamed] == ["", "  "]


def test_a_new_id_never_clashes_with_another_id_of_the_turn() -> None:
    unique, _ = unique_ids(1, calls("keel-1-1", "keel-1-1", "keel-1-1-2", ""))
    ids = [c.id for c in unique]
    assert ids == ["keel-1-1", "keel-1-1-3", "keel-1-1-2", "keel-1-3"]
    assert len(set(ids)) == len(ids)
