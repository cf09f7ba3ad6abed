"""``keel keys init | rotate-signing | rotate-codec``: the files docker compose mounts as
secrets, created and rotated without starting the stack (``keel.cli.main`` in this process)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from keel.cli import main
from keel.runtime.keys import LocalKeys, TokenSigner


def keel(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def test_init_creates_the_three_files_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "keys"
    code, out, _ = keel(capsys, "keys", "init", "--dir", str(directory))
    assert code == 0
    keys = LocalKeys(directory)
    for path in (keys.signing_key, keys.jwks, keys.codec_keys):
        assert f"{path.name} " in out and path.is_file()
    assert out.count("created") == 3
    assert stat.S_IMODE(keys.signing_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.codec_keys.stat().st_mode) == 0o600
    pem = keys.signing_key.read_bytes()
    code, out, _ = keel(capsys, "keys", "init", "--dir", str(directory))
    assert code == 0
    assert out.count("kept") == 3 and "created" not in out
    assert keys.signing_key.read_bytes() == pem  # never replaced


def test_init_defaults_to_keel_keys_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_KEYS_DIR", str(tmp_path / "from-env"))
    code, out, _ = keel(capsys, "keys", "init")
    assert code == 0
    assert out.splitlines()[0] == f"keys in {tmp_path / 'from-env'}"
    assert LocalKeys(tmp_path / "from-env").jwks.is_file()


def test_rotate_signing_keeps_the_old_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = LocalKeys(tmp_path)
    keel(capsys, "keys", "init", "--dir", str(tmp_path))
    old_kid = TokenSigner.from_file(keys.signing_key).kid
    code, out, _ = keel(capsys, "keys", "rotate-signing", "--dir", str(tmp_path))
    assert code == 0
    new_kid = TokenSigner.from_file(keys.signing_key).kid
    assert new_kid != old_kid
    published = [k["kid"] for k in json.loads(keys.jwks.read_text())["keys"]]
    assert published == [new_kid, old_kid]
    assert f"new signing key {new_kid}" in out and "keeps 1 older" in out


def test_rotate_codec_adds_a_key_that_encrypts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = LocalKeys(tmp_path)
    keel(capsys, "keys", "init", "--dir", str(tmp_path))
    old = json.loads(keys.codec_keys.read_text())
    code, out, _ = keel(capsys, "keys", "rotate-codec", "--dir", str(tmp_path))
    assert code == 0
    new = json.loads(keys.codec_keys.read_text())
    assert new["encrypt_with"] != old["encrypt_with"]
    assert set(new["keys"]) == set(old["keys"]) | {new["encrypt_with"]}
    assert new["keys"][old["encrypt_with"]] == old["keys"][old["encrypt_with"]]
    assert f"new codec key {new['encrypt_with']}" in out


def test_damaged_files_and_unusable_directories_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keel(capsys, "keys", "init", "--dir", str(tmp_path))
    LocalKeys(tmp_path).codec_keys.write_text("not json")
    code, out, err = keel(capsys, "keys", "rotate-codec", "--dir", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith(f"keel: the key files in {tmp_path} are damaged: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = keel(capsys, "keys", "init", "--dir", str(blocker / "keys"))
    assert code == 2
    assert err.startswith(f"keel: cannot use the key directory {blocker / 'keys'}: ")
    assert len(err.strip().splitlines()) == 1


def test_unknown_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = keel(capsys, "keys", "rotate-everything")
    assert code == 2
    assert "invalid choice: 'rotate-everything'" in err
