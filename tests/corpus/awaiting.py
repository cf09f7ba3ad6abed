"""Corpus cases that fail on today's code because the defect they expose is being fixed.

``AWAITING_FIX`` is used only to deselect them (tests/corpus/conftest.py): each name maps to
the defect it waits for. Run them anyway with ``KEEL_CORPUS_ALL=1 python -m pytest
tests/corpus``; remove a name when its fix is merged (the lead removes the list).
"""

from __future__ import annotations

SIM_IDS = "simulator: optional ToolCallSpec.id (scripted tool-call ids)"
SIM_USAGE = "simulator: scripted TurnSpec.usage (negative / absurd usage)"
FALSE_READONLY = "a false readOnlyHint on an untrusted server runs a write without approval"
TEXT_ERRORS = "text-only errors ('Error: ...' as a normal result) count as success"
PLAIN_LOOKUPS = "a plain-text lookup answer passes an 'exists' check"
DIGEST = "decisions carry no argument digest and approval ids are predictable"
ESCAPES = "escape sequences reach what `keel result` / `keel watch` print"
NESTING = "deeply nested JSON raises RecursionError in the workflow (task fails until wall clock)"
LOST_AUDIT = "an approved call whose delivery fails is missing from RunResult.approvals"
RAW_TEXT = "a tool's multi-line / traceback-shaped text is shown raw as the step detail"

AWAITING_FIX: dict[str, str] = {
    **dict.fromkeys(
        [
            "ids_repeated_in_one_turn",
            "ids_repeated_across_turns",
            "ids_missing",
            "ids_repeated_on_two_refunds",
            "ids_repeated_refund_across_turns",
            "ids_colon_in_id",
            "ids_very_long",
            "ids_escape_sequence",
        ],
        SIM_IDS,
    ),
    **dict.fromkeys(
        [
            "usage_negative",
            "usage_absurd",
            "usage_cached_above_prompt",
            "usage_zero",
            "usage_absurd_trips_budget",
        ],
        SIM_USAGE,
    ),
    **dict.fromkeys(
        [
            "inject_notes_then_wipe",
            "false_readonly_wipe",
            "false_readonly_transfer",
            "false_readonly_wipe_approved",
            "false_readonly_wipe_repeated",
            "false_readonly_as_lookup",
        ],
        FALSE_READONLY,
    ),
    "text_error_charge_approved": TEXT_ERRORS,
    "text_error_lookup_direct": TEXT_ERRORS,
    "plain_text_lookup_not_found": PLAIN_LOOKUPS,
    "text_error_lookup_exists": PLAIN_LOOKUPS,
    "decide_a_with_b_arguments": DIGEST,
    "decide_early_guessed_id": DIGEST,
    "decide_early_guessed_id_email": DIGEST,
    "hallucinated_escape_in_name": ESCAPES,
    "escape_in_answer": ESCAPES,
    "result_ansi_banner": ESCAPES,
    "escape_in_argument": ESCAPES,
    "escape_in_refund_note": ESCAPES,
    "malformed_deeply_nested": NESTING,
    "result_deeply_nested_json": NESTING,
    "slow_write_approved": LOST_AUDIT,
    "result_traceback_text": RAW_TEXT,
}
