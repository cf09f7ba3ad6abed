"""``import keel`` stays light, checked in a fresh interpreter (the unit tier starts none).

The MCP servers import ``keel.contracts.names``, which runs ``keel/__init__.py`` first, and
must work where temporalio is not installed: here a meta-path finder makes temporalio (and
the client side's other heavy dependencies) unimportable, as on such a machine.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import REPO

HEAVY = ("temporalio", "httpx2", "opentelemetry", "structlog")

BLOCK_HEAVY = f"""
import importlib.abc, json, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
        return None

sys.meta_path.insert(0, NotInstalled())
"""


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )


def test_keel_and_its_names_import_without_temporalio() -> None:
    code = BLOCK_HEAVY + (
        "import keel\n"
        "from keel.contracts.names import TASK_QUEUE\n"
        "print(json.dumps([TASK_QUEUE, keel.WORKFLOW_TYPE, sorted(keel.__all__)[:1]]))\n"
    )
    done = python(code)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["agents", "AgentWorkflow", ["AgentInput"]]


def test_a_client_function_loads_temporalio_only_when_asked_for() -> None:
    code = (
        "import json, sys\n"
        "import keel\n"
        f"before = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]\n"
        "keel.start_run\n"
        "after = 'temporalio' in sys.modules\n"
        "print(json.dumps([before, after]))\n"
    )
    done = python(code)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[], True]


def test_without_temporalio_a_client_name_fails_as_an_import_error() -> None:
    """A server process that touches the client side by mistake learns why, at once."""
    done = python(BLOCK_HEAVY + "import keel\nkeel.connect\n")

    assert done.returncode != 0
    assert "No module named 'temporalio" in done.stderr
