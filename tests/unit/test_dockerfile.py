"""The Dockerfile and .dockerignore, read as text: the image copies every package the install
and worker.py need, installs the runtime without the dev extras and runs unprivileged.
(docker-compose.yml needs the Compose binary to render: tests/integration/test_compose.py.)"""

from __future__ import annotations

import ast
import json
import shlex
import tomllib
from pathlib import Path

from tests.helpers import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    pairs = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def copied_sources() -> set[str]:
    sources: set[str] = set()
    for keyword, args in dockerfile_instructions():
        if keyword != "COPY":
            continue
        tokens = json.loads(args) if args.startswith("[") else shlex.split(args)
        tokens = [t for t in tokens if not t.startswith("--")]
        sources.update(t.rstrip("/").removeprefix("./") for t in tokens[:-1])
    return sources


def local_top_level_imports(path: Path) -> set[str]:
    """Top-level names imported by ``path`` that are packages or modules of this repo."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return {
        n for n in names if (REPO / n / "__init__.py").is_file() or (REPO / f"{n}.py").is_file()
    }


def test_dockerfile_copies_everything_the_processes_need() -> None:
    sources = copied_sources()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools_cfg = pyproject["tool"]["setuptools"]
    packages = {p.rstrip("*") for p in setuptools_cfg["packages"]["find"]["include"]}
    modules = {f"{m}.py" for m in setuptools_cfg["py-modules"]}
    required = {"pyproject.toml", "profiles", *packages, *modules}
    assert {"keel", "workflows", "activities", "mcp_servers", "simulator", "worker.py"} <= required
    assert local_top_level_imports(REPO / "worker.py") <= packages
    missing = required - sources
    assert not missing, f"Dockerfile does not COPY {sorted(missing)}"
    for source in sources:
        assert (REPO / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_dockerignore_keeps_local_state_out_but_not_the_sources() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".keel", ".git", "tests"} <= patterns
    assert any("__pycache__" in p for p in patterns)
    assert not patterns & copied_sources()


def test_dockerfile_runtime_shape() -> None:
    instructions = dockerfile_instructions()
    by_keyword: dict[str, list[str]] = {}
    for keyword, args in instructions:
        by_keyword.setdefault(keyword, []).append(args)
    assert by_keyword["FROM"] == ["python:3.11-slim"]
    assert by_keyword["WORKDIR"] == ["/app"]
    installs = [a for a in by_keyword["RUN"] if "pip install" in a]
    assert installs and all("--no-cache-dir ." in a and "[dev]" not in a for a in installs)
    users = by_keyword.get("USER", [])
    assert users and users[-1] not in ("root", "0")
    assert json.loads(by_keyword["CMD"][-1]) == ["python", "worker.py"]
    # The installed runtime must come after every COPY it installs from, and USER after both.
    order = [keyword for keyword, _ in instructions]
    last_copy = max(i for i, k in enumerate(order) if k == "COPY")
    first_install = next(
        i for i, (k, a) in enumerate(instructions) if k == "RUN" and "pip install" in a
    )
    assert last_copy < first_install < order.index("USER")
