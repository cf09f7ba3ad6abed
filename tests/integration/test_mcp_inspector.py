"""MCP Inspector (its CLI) against the stack's support desk, with a token from ``keel token``.

What a person does to try a server by hand (README): ``keel token --server support_desk``
prints a token for every scope the server advertises, and the Inspector sends it::

    npx -y @modelcontextprotocol/inspector --cli http://127.0.0.1:8201/mcp --transport http \\
        --method tools/list --header "Authorization: Bearer $(keel token --server support_desk)"

The Inspector is fetched by ``npx`` (pinned to ``INSPECTOR``) into the checkout's npm cache
``.keel/npm-cache``, like the conformance suite: the first run needs the npm registry, later
runs are offline. If it cannot be fetched the test fails (it never skips).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from keel.stack import Stack
from tests.helpers import REPO, keel_env

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
NPM_CACHE = REPO / ".keel" / "npm-cache"


def token_env(stack: Stack) -> dict[str, str]:
    return {
        **stack.config.client_env(),
        "KEEL_MCP_SUPPORT_DESK": stack.config.mcp_url("support_desk"),
    }


def keel_token(stack: Stack, *args: str) -> str:
    env = {**keel_env(stack), **token_env(stack)}
    done = subprocess.run(
        [sys.executable, "-m", "keel", "token", *args], capture_output=True, text=True, env=env,
        cwd=REPO,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [token] = done.stdout.split()  # only the token on stdout
    return token


def inspector(url: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    npx = shutil.which("npx")
    assert npx, "MCP Inspector needs Node.js and npm (npx) on PATH"
    env = {**os.environ, "npm_config_cache": str(NPM_CACHE), "npm_config_update_notifier": "false",
           "NO_COLOR": "1"}  # fmt: skip
    header = ["--header", f"Authorization: Bearer {token}"] if token else []
    return subprocess.run(
        [npx, "-y", INSPECTOR, "--cli", url, "--transport", "http", *args, *header],
        capture_output=True, text=True, env=env, timeout=600, cwd=REPO,
    )  # fmt: skip


@pytest.fixture(scope="module")
def desk_url(stack: Stack) -> str:
    return stack.config.mcp_url("support_desk")


def test_inspector_lists_and_calls_tools_with_a_keel_token(stack: Stack, desk_url: str) -> None:
    token = keel_token(stack, "--server", "support_desk")
    listed = inspector(desk_url, "--method", "tools/list", token=token)
    assert listed.returncode == 0, (listed.stdout[-2000:], listed.stderr[-2000:])
    names = {tool["name"] for tool in json.loads(listed.stdout)["tools"]}
    assert {"get_order", "refund_order", "send_email"} <= names
    called = inspector(desk_url, "--method", "tools/call", "--tool-name", "get_order",
                       "--tool-arg", "order_id=ORD-1042", token=token)  # fmt: skip
    assert called.returncode == 0, (called.stdout[-2000:], called.stderr[-2000:])
    assert json.loads(called.stdout)["structuredContent"]["order_id"] == "ORD-1042"


def test_inspector_without_a_token_is_refused(desk_url: str) -> None:
    done = inspector(desk_url, "--method", "tools/list")
    assert done.returncode != 0
    assert "auth_required" in done.stdout + done.stderr  # the Inspector's word for our 401


def test_inspector_is_told_the_missing_scope(stack: Stack, desk_url: str) -> None:
    token = keel_token(stack, "--server", "support_desk", "--scope", "desk:read")
    done = inspector(desk_url, "--method", "tools/call", "--tool-name", "refund_order",
                     "--tool-arg", "order_id=ORD-1042", "--tool-arg", "amount=1",
                     "--tool-arg", "reason=other", token=token)  # fmt: skip
    assert done.returncode != 0
    assert 'Insufficient scope: required \\"desk:refund\\"' in done.stdout + done.stderr
