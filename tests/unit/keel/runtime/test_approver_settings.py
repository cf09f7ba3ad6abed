"""The worker's settings for approvers' identity tokens (KEEL_APPROVER_*)."""

from __future__ import annotations

from pathlib import Path

from keel.contracts import names
from keel.runtime.config import Settings
from keel.runtime.keys import ensure_local_keys
from tests.unit.keel.runtime.test_profiles import GOOD, write


def test_defaults_use_the_local_jwks_when_it_exists(tmp_path: Path) -> None:
    home = {"KEEL_HOME": str(tmp_path)}
    assert Settings.from_env(home).approver_jwks == ()  # no keys yet: none
    keys = ensure_local_keys(tmp_path / "keys")
    settings = Settings.from_env(home)
    assert settings.approver_jwks == (str(keys.jwks),)
    assert settings.approver_issuers == (names.LOCAL_ISSUER,)
    assert settings.approver_audience == names.APPROVER_AUDIENCE == "keel-approvals"
    assert settings.approver_roles_claim == "roles"


def test_a_real_issuer_is_configured_by_environment(tmp_path: Path) -> None:
    ensure_local_keys(tmp_path / "keys")
    settings = Settings.from_env(
        {
            "KEEL_HOME": str(tmp_path),
            "KEEL_APPROVER_JWKS": " https://sso.example/realms/ops/protocol/openid-connect/certs,"
            " /etc/keel/old.json ",
            "KEEL_APPROVER_ISSUER": "https://sso.example/realms/ops",
            "KEEL_APPROVER_AUDIENCE": "keel",
            "KEEL_APPROVER_ROLES_CLAIM": "realm_access.roles",
        }
    )
    assert settings.approver_jwks == (
        "https://sso.example/realms/ops/protocol/openid-connect/certs",
        "/etc/keel/old.json",
    )
    assert settings.approver_issuers == ("https://sso.example/realms/ops",)
    assert (settings.approver_audience, settings.approver_roles_claim) == (
        "keel",
        "realm_access.roles",
    )
    # Empty: no approver keys, even though the local JWKS exists.
    off = Settings.from_env({"KEEL_HOME": str(tmp_path), "KEEL_APPROVER_JWKS": ""})
    assert off.approver_jwks == ()


def test_the_worker_warns_at_start_of_profiles_that_cannot_verify_decisions(
    tmp_path: Path,
) -> None:
    from worker import check_profiles

    write(tmp_path, "signed", GOOD + "\n[approvals]\nrequire_identity = true\n")
    env = {"KEEL_PROFILES_PATH": str(tmp_path), "KEEL_HOME": str(tmp_path)}
    assert check_profiles(Settings.from_env(env)) == [
        "profile 'signed': approvals.require_identity needs KEEL_APPROVER_JWKS"
    ]
    ensure_local_keys(tmp_path / "keys")  # the embedded default's JWKS is enough
    assert check_profiles(Settings.from_env(env)) == []
