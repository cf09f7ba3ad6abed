"""Where the worker and the CLI find the key files (keel/runtime/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.contracts.errors import ConfigError
from keel.contracts.names import LOCAL_ISSUER
from keel.runtime.config import Settings
from keel.runtime.keys import ensure_local_keys


def test_the_files_make_up_created_are_found_under_keel_home(tmp_path: Path) -> None:
    keys = ensure_local_keys(tmp_path / "keys")
    settings = Settings.from_env({"KEEL_HOME": str(tmp_path)})
    assert settings.signing_key == keys.signing_key
    assert settings.codec_keys == keys.codec_keys
    assert settings.auth_issuer == LOCAL_ISSUER


def test_no_key_files_means_no_signing_and_no_codec(tmp_path: Path) -> None:
    settings = Settings.from_env({"KEEL_HOME": str(tmp_path)})
    assert settings.signing_key is None
    assert settings.codec_keys is None


def test_an_empty_variable_turns_a_key_off_and_a_missing_file_is_an_error(
    tmp_path: Path,
) -> None:
    ensure_local_keys(tmp_path / "keys")
    settings = Settings.from_env({"KEEL_HOME": str(tmp_path), "KEEL_CODEC_KEYS": ""})
    assert settings.codec_keys is None
    assert settings.signing_key is not None
    with pytest.raises(ConfigError, match=r"KEEL_SIGNING_KEY=.*no such file"):
        Settings.from_env({"KEEL_SIGNING_KEY": str(tmp_path / "nope.pem")})


def test_the_issuer_can_be_named(tmp_path: Path) -> None:
    env = {"KEEL_HOME": str(tmp_path), "KEEL_AUTH_ISSUER": "https://idp.example/realms/x"}
    assert Settings.from_env(env).auth_issuer == "https://idp.example/realms/x"
