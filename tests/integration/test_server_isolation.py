"""The MCP servers run without Keel's runtime: deployable on the base install alone.

The support desk starts as a subprocess whose interpreter refuses to import the worker's
packages — temporalio, temporalio-mcp, genai-prices, jsonschema, prometheus-client, Keel's
workflows, activities, worker and simulator, and every ``keel.*`` module except
``keel.contracts`` (the names and pydantic models the servers share with the worker) — as if
they were not installed. It then serves MCP over real HTTP, checking access tokens (PyJWT is
a base dependency): tools are listed, a write tool is called twice with an idempotency key and
an approval grant (verified against ``--grant-jwks``; the ledger replays the second call), its
spans are printed by the console exporter and flushed on SIGTERM. An import of any refused
package anywhere on that path (launcher, ledger, logs, tracing, auth, the server) makes the
server fail to start or the call fail, and this test with it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, cast

import httpx2
from mcp_types import RequestParamsMeta

from keel.contracts import approval_digest, names
from keel.contracts.names import META_IDEMPOTENCY_KEY
from keel.procs import free_port, python_argv, spawn, stop, wait_http
from keel.runtime.keys import TokenSigner, ensure_local_keys
from tests.auth import connect, mint, server_env
from tests.helpers import DESK_TOOLS, REPO

# Run as ``python -c BOOTSTRAP MODULE ARGS...``: install the refusing finder, then run MODULE
# as ``python -m MODULE ARGS...`` would. ISOLATION_ALLOW_KEEL=1 refuses the third-party
# packages only (a base install, where all of Keel's code is present).
BOOTSTRAP = r"""
import importlib.abc
import os
import runpy
import sys

REFUSED = {"temporalio", "temporalio_mcp", "genai_prices", "jsonschema", "prometheus_client",
           "workflows", "activities", "worker", "simulator"}


def refused(name):
    top = name.partition(".")[0]
    if top == "keel" and not os.environ.get("ISOLATION_ALLOW_KEEL"):
        return name not in ("keel", "keel.contracts") and not name.startswith("keel.contracts.")
    return top in REFUSED


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if refused(name):
            raise ModuleNotFoundError(f"No module named {name!r} (refused: not in the base"
                                      " install)", name=name)
        return None


early = sorted(name for name in sys.modules if refused(name))
if early:
    raise SystemExit(f"imported before the finder was installed: {early}")
sys.meta_path.insert(0, Refuse())
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def isolated(module: str, *args: str) -> list[str]:
    """argv that runs ``python -m module args`` without the runtime's packages."""
    return python_argv("-c", BOOTSTRAP, module, *args)


def log_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines of a server log (the console exporter's spans are multi-line)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith('{"')]


def grant(keys_dir: Path, url: str, refund: dict[str, Any]) -> str:
    """The approval grant Keel's worker would mint for this refund (activities/grants.py)."""
    signer = TokenSigner.from_file(ensure_local_keys(keys_dir).signing_key)
    claims = {
        "aud": url, names.CLAIM_RUN: "wf-iso", names.CLAIM_SERVER: "support_desk",
        names.CLAIM_TOOL: "refund_order", names.CLAIM_APPROVER: "alice",
        names.CLAIM_DIGEST: approval_digest("support_desk", "refund_order", refund),
        names.CLAIM_DECISION: "apr-iso",
    }  # fmt: skip
    return signer.sign(claims, typ=names.TYP_GRANT, ttl_seconds=120)


async def test_support_desk_serves_without_the_runtime(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    refund = {"order_id": "ORD-1042", "amount": 5, "reason": "damaged"}
    token = grant(tmp_path / "keys", url, refund)
    argv = isolated("mcp_servers.support_desk", "--port", str(port), "--db", str(tmp_path / "d.db"),
                    "--grant-jwks", str(tmp_path / "keys" / "jwks.json"))  # fmt: skip
    log = tmp_path / "desk.log"
    env = {**server_env(), "OTEL_TRACES_EXPORTER": "console"}
    child = spawn("isolated_desk", argv, log, env=env, cwd=REPO)
    meta = cast(
        RequestParamsMeta, {META_IDEMPOTENCY_KEY: "wf-iso:1:call_0", names.META_GRANT: token}
    )
    try:
        wait_http(child, f"http://127.0.0.1:{port}/healthz")
        health = httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=5.0).json()
        # the access token the worker would send for run wf-iso: a grant is bound to its run
        async with connect(url, token=mint(None, url, keel_run="wf-iso")) as client:
            tools = [tool.name for tool in (await client.list_tools()).tools]
            first = await client.call_tool("refund_order", refund, meta=meta)
            again = await client.call_tool("refund_order", refund, meta=meta)
    finally:
        stop(child)  # SIGTERM: the server flushes its batched spans as it stops
    assert health == {"status": "ok", "server": "support-desk"}
    assert tools == list(DESK_TOOLS)
    assert not first.is_error and first.structured_content is not None
    assert again.structured_content == first.structured_content
    accepted = [line for line in log_lines(log) if line["event"] == "grant.accepted"]
    assert [line["decision"] for line in accepted] == ["apr-iso", "apr-iso"]
    replays = [line for line in log_lines(log) if line["event"] == "ledger.replay"]
    assert len(replays) == 1 and replays[0]["component"] == "support-desk"
    assert "trace_id" in replays[0]  # logged inside the request's span
    assert log.read_text().count('"name": "tools/call refund_order"') == 2
    assert "Traceback" not in log.read_text()


def test_the_refusal_is_real(tmp_path: Path) -> None:
    """A module that imports a refused package, even through an allowed one, fails to start:
    what a server that imported temporalio would do under the bootstrap above."""
    (tmp_path / "leaky_server.py").write_text(
        "import mcp_servers.shared.launcher\nimport keel.contracts.names\nimport temporalio\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        isolated("leaky_server"), capture_output=True, text=True, timeout=60, cwd=REPO, env=env
    )
    assert done.returncode != 0
    assert "No module named 'temporalio' (refused: not in the base install)" in done.stderr


def test_the_keel_command_without_the_runtime_says_what_to_install() -> None:
    env = {**os.environ, "ISOLATION_ALLOW_KEEL": "1"}
    done = subprocess.run(
        isolated("keel", "up"), capture_output=True, text=True, timeout=60, cwd=REPO, env=env
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "keel: No module named 'temporalio' (refused: not in the base install): the keel"
        " command needs pip install 'keel[runtime]'"
    ]
