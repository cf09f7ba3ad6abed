"""docker-compose.yml's zero-trust wiring, validated offline with the real Compose binary
(tests/integration/test_compose.py explains how): the MCP servers run with auth on and
DNS-rebinding protection on for their service names, the keys are compose secrets mounted
from the directory the CLI uses (never in the image, never in the file), and the codec
service serves the Temporal UI. docs/security.md, "docker compose", describes the same."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from keel.runtime.config import keys_dir
from keel.runtime.keys import LocalKeys
from mcp_servers.shared.launcher import build_parser, transport_security
from tests.helpers import REPO
from tests.integration.test_compose import render

MCP_SERVERS = {
    "support-desk": ("KEEL_MCP_SUPPORT_DESK", 8201),
    "knowledge": ("KEEL_MCP_KNOWLEDGE", 8202),
}
SECRETS_DIR = "/run/secrets"
# Which service reads which key file, and nothing more: the servers only the public keys.
MOUNTED = {
    "support-desk": {"jwks"},
    "knowledge": {"jwks"},
    "worker": {"signing-key", "codec-keys", "jwks"},
    "codec": {"codec-keys"},
}
SECRET_FILES = {"signing-key": "signing.pem", "codec-keys": "codec-keys.json", "jwks": "jwks.json"}
KEY_READERS = {"worker", "codec"}  # read 0600 files: run as the host user


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env_file = tmp_path_factory.mktemp("compose-security") / "empty.env"
    env_file.write_text("")
    model = render(env_file, ("sim",))
    assert set(model["secrets"]) == set(SECRET_FILES)
    services: dict[str, Any] = model["services"]
    return services


def option(command: list[str], flag: str) -> list[str]:
    """Every value given to ``flag`` in ``command`` (repeatable options)."""
    return [command[i + 1] for i, arg in enumerate(command) if arg == flag]


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """secret name -> the path the container reads it at."""
    paths = {}
    for secret in service.get("secrets", []):
        target = secret.get("target") or secret["source"]
        paths[secret["source"]] = target if target.startswith("/") else f"{SECRETS_DIR}/{target}"
    return paths


@pytest.mark.parametrize("name", sorted(MCP_SERVERS))
def test_mcp_servers_require_tokens_for_their_own_urls(services: dict[str, Any], name: str) -> None:
    service, worker_env = services[name], services["worker"]["environment"]
    command = service["command"]
    variable, port = MCP_SERVERS[name]
    assert "--insecure-no-auth" not in command
    assert "KEEL_INSECURE_NO_AUTH" not in service.get("environment", {})
    assert option(command, "--jwks") == [mounts(service)["jwks"]]
    # The worker's tokens name the URL it calls; the host's (keel token, Inspector) the
    # published one.
    assert (
        option(command, "--resource-url") == [f"http://{name}:{port}/mcp"] == [worker_env[variable]]
    )
    [published] = [p for p in service["ports"] if int(p["target"]) == port]
    assert option(command, "--audience") == [f"http://127.0.0.1:{published['published']}/mcp"]
    if name == "support-desk":  # grants: only the worker's keys sign them
        assert option(command, "--grant-jwks") == [mounts(service)["jwks"]]


@pytest.mark.parametrize("name", sorted(MCP_SERVERS))
def test_dns_rebinding_protection_is_on_for_the_service_name(
    services: dict[str, Any], name: str
) -> None:
    command = services[name]["command"]
    args, unknown = build_parser(name, "", 1).parse_known_args(command[3:])
    assert args.host == "0.0.0.0" and args.allowed_host == [f"{name}:*"]
    # The shared parser knows every auth and grant flag compose passes; only the desk's own
    # --db is left (a misspelt flag would make the server exit 2 in the container).
    assert {a for a in unknown if a.startswith("--")} <= {"--db"}
    security = transport_security(args.host, args.allowed_host)
    assert security.enable_dns_rebinding_protection
    assert f"{name}:*" in security.allowed_hosts
    assert "127.0.0.1:*" in security.allowed_hosts  # the published port, from the host
    # What the worker sends: Host "<service>:<port>".
    assert f"http://{name}:*" in security.allowed_origins


def test_each_service_mounts_only_the_keys_it_needs(services: dict[str, Any]) -> None:
    mounted = {name: set(mounts(s)) for name, s in services.items() if s.get("secrets")}
    assert mounted == MOUNTED
    for name, service in services.items():
        for source, path in mounts(service).items():
            assert path == f"{SECRETS_DIR}/{SECRET_FILES[source]}", (name, source)


def test_the_worker_reads_its_keys_from_the_secrets(services: dict[str, Any]) -> None:
    worker = services["worker"]
    env, paths = worker["environment"], mounts(worker)
    assert env["KEEL_SIGNING_KEY"] == paths["signing-key"]
    assert env["KEEL_CODEC_KEYS"] == paths["codec-keys"]
    assert env["KEEL_APPROVER_JWKS"] == paths["jwks"]


def test_no_key_material_in_the_file_or_the_image(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for variable, value in (service.get("environment") or {}).items():
            text = str(value or "")
            assert "PRIVATE KEY" not in text and '"keys"' not in text, (name, variable)
        # Secrets, not bind mounts of the key directory.
        for volume in service.get("volumes", []):
            assert "keys" not in str(volume.get("source", "")), (name, volume)
    # The key directory is under .keel/, which never enters the build context.
    ignored = {
        line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
    }
    assert ".keel" in ignored
    assert keys_dir({}).is_relative_to(REPO / ".keel")


@pytest.mark.parametrize(
    "env",
    [{}, {"KEEL_HOME": "/srv/keel-home"}, {"KEEL_KEYS_DIR": "/srv/keel-keys", "KEEL_HOME": "/x"}],
    ids=["default", "KEEL_HOME", "KEEL_KEYS_DIR"],
)
def test_secrets_come_from_the_directory_the_cli_uses(tmp_path: Path, env: dict[str, str]) -> None:
    env_file = tmp_path / "keys.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    secrets = render(env_file)["secrets"]
    keys = LocalKeys(keys_dir(env))  # where `keel keys init`, the worker and the CLI look
    expected = {"signing-key": keys.signing_key, "codec-keys": keys.codec_keys, "jwks": keys.jwks}
    assert {name: Path(s["file"]) for name, s in secrets.items()} == expected


def test_key_readers_run_as_the_host_user(tmp_path: Path, services: dict[str, Any]) -> None:
    uid = re.search(r"--uid (\d+)", (REPO / "Dockerfile").read_text())
    assert uid is not None
    for name in KEY_READERS:
        assert services[name]["user"] == f"{uid[1]}:{uid[1]}"  # default: the image's user
    for name in set(services) - KEY_READERS:
        assert "user" not in services[name], name  # e.g. the desk owns its /data volume
    env_file = tmp_path / "uid.env"
    env_file.write_text("KEEL_UID=1234\nKEEL_GID=5678\n")
    rendered = render(env_file)["services"]
    assert {name: rendered[name]["user"] for name in KEY_READERS} == dict.fromkeys(
        KEY_READERS, "1234:5678"
    )


def test_codec_service_serves_the_ui(services: dict[str, Any]) -> None:
    codec, ui = services["codec"], services["temporal-ui"]
    command = codec["command"]
    assert command[:4] == ["python", "-m", "keel", "codec-server"]
    assert option(command, "--keys") == [mounts(codec)["codec-keys"]]
    [port] = codec["ports"]
    assert port["host_ip"] == "127.0.0.1"
    assert int(port["target"]) == int(option(command, "--port")[0]) == 8205
    # The browser calls the codec from the UI's page: the published URL, CORS for its origins.
    assert ui["environment"]["TEMPORAL_CODEC_ENDPOINT"] == f"http://127.0.0.1:{port['published']}"
    [ui_port] = ui["ports"]
    origins = {f"http://{host}:{ui_port['published']}" for host in ("localhost", "127.0.0.1")}
    assert set(option(command, "--cors-origin")) == origins
    assert origins <= set(ui["environment"]["TEMPORAL_CORS_ORIGINS"].split(","))
