"""docker-compose.yml's content store, validated offline with the real Compose binary
(tests/integration/test_compose.py explains how): the worker and the ``cli`` service share
one store (the same volume at the path KEEL_STORE names, or the same S3 settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_compose import COMPOSE_FILE, render, run_compose

SHARERS = ("worker", "cli")
STORE_SETTINGS = ("KEEL_STORE", "KEEL_STORE_ENDPOINT_URL", "KEEL_PAYLOAD_THRESHOLD")


@pytest.fixture(scope="module")
def empty_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose-store") / "empty.env"
    path.write_text("")
    return path


@pytest.fixture(scope="module")
def services(empty_env: Path) -> dict[str, Any]:
    rendered: dict[str, Any] = render(empty_env, ("sim", "cli"))
    return rendered


@pytest.mark.parametrize("profiles", [("cli",), ("sim", "cli")], ids=["cli", "sim+cli"])
def test_the_cli_profile_validates_cleanly(empty_env: Path, profiles: tuple[str, ...]) -> None:
    result = run_compose(COMPOSE_FILE, "config", "-q", env_file=empty_env, profiles=profiles)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_the_cli_is_not_started_by_default(empty_env: Path) -> None:
    assert "cli" not in render(empty_env, ("sim",))["services"]


def test_worker_and_cli_share_one_store_volume(services: dict[str, Any]) -> None:
    model = services["services"]
    stores = {name: model[name]["environment"]["KEEL_STORE"] for name in SHARERS}
    assert stores == dict.fromkeys(SHARERS, "/store")
    for name in SHARERS:
        mounts = {m["target"]: m for m in model[name]["volumes"]}
        assert mounts["/store"]["type"] == "volume", name
        assert mounts["/store"]["source"] == "keel-store", name
    assert "keel-store" in services["volumes"]
    cli = model["cli"]
    assert cli["entrypoint"] == ["python", "-m", "keel"]
    assert (
        cli["environment"]["TEMPORAL_ADDRESS"] == model["worker"]["environment"]["TEMPORAL_ADDRESS"]
    )
    assert (
        cli["environment"]["KEEL_CODEC_KEYS"] == model["worker"]["environment"]["KEEL_CODEC_KEYS"]
    )


def test_an_s3_store_reaches_both(tmp_path: Path) -> None:
    env_file = tmp_path / "s3.env"
    env_file.write_text(
        "KEEL_STORE=s3://keel-payloads/prod\nKEEL_STORE_ENDPOINT_URL=http://minio:9000\n"
        "KEEL_PAYLOAD_THRESHOLD=65536\nAWS_ACCESS_KEY_ID=AKIDEXAMPLE\n"
        "AWS_SECRET_ACCESS_KEY=secret\nAWS_DEFAULT_REGION=eu-west-1\n"
    )
    model = render(env_file, ("cli",))["services"]
    for name in SHARERS:
        env = model[name]["environment"]
        assert [env[k] for k in STORE_SETTINGS] == [
            "s3://keel-payloads/prod", "http://minio:9000", "65536"
        ], name  # fmt: skip
        assert env["AWS_ACCESS_KEY_ID"] == "AKIDEXAMPLE", name
        assert env["AWS_DEFAULT_REGION"] == "eu-west-1", name
