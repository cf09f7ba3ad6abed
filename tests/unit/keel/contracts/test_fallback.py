"""``[fallback]`` settings: defaults, the failure classes it names, one readable line for a
mistake at profile load; and the list of failure classes matches the workflows' own."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from keel.contracts import DEFAULT_TRIGGERS, RUN_FAILURE_CLASSES, FallbackSettings, ProfileError
from keel.runtime.profiles import load_profile_file
from workflows.failures import FailureClass

PROFILE = """
system_prompt = "You answer briefly."
[model]
name = "sim/quick_answer"
[[servers]]
name = "support_desk"
"""


def test_defaults_name_the_ticket_fallback_and_the_halting_classes() -> None:
    settings = FallbackSettings()
    assert settings.workflow == "keel.fallback.ticket"
    assert settings.on == list(DEFAULT_TRIGGERS)
    assert {"step_limit", "no_progress", "approval_timeout", "upstream_unavailable",
            "history_limit"} <= set(settings.on)  # fmt: skip
    # a human's decision is not a reason to hand the run to a human
    assert "lost_result_aborted" not in settings.on
    assert settings.notify is None and settings.server == "support_desk"


def test_every_failure_class_of_a_started_run_is_known() -> None:
    assert set(RUN_FAILURE_CLASSES) == set(typing.get_args(FailureClass)) - {"cancelled"}
    assert set(DEFAULT_TRIGGERS) <= set(RUN_FAILURE_CLASSES)


def test_repeated_classes_are_kept_once() -> None:
    assert FallbackSettings(on=["wall_clock", "wall_clock"]).on == ["wall_clock"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"on": ["step_limit", "stepp_limit"]}, "unknown failure class 'stepp_limit'"),
        ({"on": ["cancelled"]}, "unknown failure class 'cancelled'"),
        ({"on": []}, "at least 1 item"),
        ({"timeout_seconds": 0}, "greater than 0"),
        ({"priority": "asap"}, "'low', 'normal', 'high' or 'urgent'"),
        ({"workflow": "no spaces"}, "should match pattern"),
        ({"wait": True}, "Extra inputs are not permitted"),
    ],
)
def test_a_mistake_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FallbackSettings.model_validate(fields)


def test_an_unknown_failure_class_fails_profile_load_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(PROFILE + '[fallback]\non = ["step_limit", "tired"]\n')
    with pytest.raises(ProfileError) as caught:
        load_profile_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert "fallback.on" in message and "unknown failure class 'tired'" in message


def test_a_profile_without_fallback_has_none(tmp_path: Path) -> None:
    path = tmp_path / "plain.toml"
    path.write_text(PROFILE)
    assert load_profile_file(path).fallback is None
    path.write_text(PROFILE + "[fallback]\n")
    assert load_profile_file(path).fallback == FallbackSettings()


def test_the_ticket_fallback_needs_its_server_in_the_profile(tmp_path: Path) -> None:
    path = tmp_path / "serverless.toml"
    path.write_text(PROFILE + '[fallback]\nserver = "knowledge"\n')
    with pytest.raises(ProfileError) as caught:
        load_profile_file(path)
    assert "\n" not in str(caught.value)
    assert "fallback.server 'knowledge' is not a server of the profile" in str(caught.value)
