"""The MCP servers as OAuth 2.1 resource servers: real subprocesses, real HTTP, real tokens.

For every HTTP tool of both servers: an anonymous call is 401 with ``WWW-Authenticate``, a
token without the tool's scope is 403 ``insufficient_scope`` naming it, and neither changes
a single row of the support desk's database (every table, the idempotency ledger too); a
token with exactly the tool's scope runs it. The protected resource metadata lists the
scopes; the principal of each call is in the server's log; ``--insecure-no-auth`` warns and
serves; a server without keys refuses to start.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client

from keel.contracts.names import LOCAL_ISSUER, TYP_GRANT
from keel.procs import free_port, python_argv
from mcp_servers.knowledge.server import TOOL_SCOPES as KB_TOOL_SCOPES
from mcp_servers.support_desk.server import TOOL_SCOPES as DESK_TOOL_SCOPES
from tests.auth import DESK_SCOPES, KB_SCOPES, bearer, connect, mint, server_env
from tests.helpers import REPO, mcp_server

# A valid call of every tool (run with the right token, each works).
CALLS: dict[str, dict[str, Any]] = {
    "search_customers": {"query": "lopez"},
    "get_customer": {"customer_id": "CUS-1001"},
    "list_orders": {"customer_id": "CUS-1001"},
    "get_order": {"order_id": "ORD-1042"},
    "refund_order": {"order_id": "ORD-1043", "amount": 1.0, "reason": "other"},
    "send_email": {"customer_id": "CUS-1001", "subject": "Hello", "body": "About your order."},
    "update_ticket": {"ticket_id": "TCK-5004", "status": "pending"},
    "add_ticket_note": {"ticket_id": "TCK-5004", "note": "Checked by the auth test."},
    "create_ticket": {"subject": "Handed over", "body": "A run halted.", "customer_id": "CUS-1001"},
    "search_knowledge": {"query": "refund damaged"},
    "get_article": {"article_id": "refund-policy"},
}
SCOPE_OF = {**DESK_TOOL_SCOPES, **KB_TOOL_SCOPES}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
# Auth settings a test server must not inherit from the environment of the test run.
AUTH_VARIABLES = ("KEEL_AUTH_", "KEEL_INSECURE_NO_AUTH", "KEEL_GRANT_JWKS")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(AUTH_VARIABLES)}
    return {**env, **extra}


def start(
    name: str, module: str, tmp: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    with mcp_server(name, module, tmp, *args, env=env) as url:
        yield url


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("auth")


@pytest.fixture(scope="module")
def desk(home: Path) -> Iterator[str]:
    """A support desk on its own database, trusting tests/auth.py's keys. Approval grants
    (another part of the server's defences) are turned off: these tests are about tokens."""
    env = {**server_env(), "SUPPORT_DESK_APPROVAL_TOOLS": ""}
    yield from start("desk", "mcp_servers.support_desk", home, "--db", str(home / "desk.db"),
                     env=env)  # fmt: skip


@pytest.fixture(scope="module")
def knowledge(home: Path) -> Iterator[str]:
    yield from start("kb", "mcp_servers.knowledge", home, env=server_env())


@pytest.fixture
def url_of(desk: str, knowledge: str) -> dict[str, str]:
    return {tool: desk if tool in DESK_TOOL_SCOPES else knowledge for tool in CALLS}


def state(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the support desk's database (ledger included)."""
    with closing(sqlite3.connect(f"file:{home / 'desk.db'}?mode=ro", uri=True)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}


def post(url: str, body: Any, token: str | None = None) -> httpx2.Response:
    headers = {**HEADERS, **(bearer(token) if token else {})}
    return httpx2.post(url, json=body, headers=headers, timeout=30.0)


def tool_call(tool: str, request_id: int = 1) -> dict[str, Any]:
    params = {"name": tool, "arguments": CALLS[tool]}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def metadata_url(url: str) -> str:
    return url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")


def challenge(response: httpx2.Response) -> str:
    return response.headers.get("www-authenticate", "")


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("tool", sorted(CALLS))
def test_an_anonymous_call_is_401_and_changes_nothing(
    tool: str, url_of: dict[str, str], home: Path
) -> None:
    url = url_of[tool]
    before = state(home)
    response = post(url, tool_call(tool))
    assert response.status_code == 401, response.text
    assert challenge(response).startswith("Bearer ")
    assert 'error="invalid_token"' in challenge(response)
    assert f'resource_metadata="{metadata_url(url)}"' in challenge(response)
    assert state(home) == before


@pytest.mark.parametrize("tool", sorted(CALLS))
def test_a_token_without_the_tools_scope_is_403_naming_it_and_changes_nothing(
    tool: str, url_of: dict[str, str], home: Path
) -> None:
    url, needed = url_of[tool], SCOPE_OF[tool]
    # Every scope both servers know but the one this tool needs.
    others = [s for s in (*DESK_SCOPES, *KB_SCOPES) if s != needed]
    before = state(home)
    response = post(url, tool_call(tool), mint(None, url, others))
    assert response.status_code == 403, response.text
    assert challenge(response).startswith('Bearer error="insufficient_scope"')
    assert f'scope="{needed}"' in challenge(response)
    assert f'resource_metadata="{metadata_url(url)}"' in challenge(response)
    assert response.json()["error"] == "insufficient_scope"
    assert state(home) == before


@pytest.mark.parametrize(
    ("case", "token"),
    [
        ("garbage", lambda url: "not-a-jwt"),
        ("another server's", lambda url: mint(None, url.replace("/mcp", "/other"))),
        ("expired", lambda url: mint(None, url, ttl=1, iat=0, exp=1)),
        ("a grant", lambda url: mint(None, url, typ=TYP_GRANT)),
        ("untrusted", lambda url: mint(None, url, iss="https://evil.example")),
    ],
)
def test_an_invalid_token_is_401_and_refunds_nothing(
    case: str, token: Any, desk: str, home: Path
) -> None:
    before = state(home)
    response = post(desk, tool_call("refund_order"), token(desk))
    assert response.status_code == 401, (case, response.text)
    assert 'error="invalid_token"' in challenge(response)
    assert state(home) == before


def test_a_batch_with_one_unscoped_call_is_refused_whole(desk: str, home: Path) -> None:
    """The SDK does not take batches, but the scope check reads them anyway: a batch is
    never a way past it."""
    before = state(home)
    batch = [tool_call("get_order", 1), tool_call("refund_order", 2), tool_call("send_email", 3)]
    response = post(desk, batch, mint(None, desk, ["desk:read"]))
    assert response.status_code == 403
    assert 'scope="desk:refund desk:email"' in challenge(response)
    assert state(home) == before


def test_a_body_the_check_cannot_read_is_refused_not_passed_on(desk: str, home: Path) -> None:
    """What the scope check cannot parse it cannot check: a refund hidden in a body Python's
    JSON parser refuses (an integer of 5000 digits) is answered with a parse error."""
    before = state(home)
    body = json.dumps(tool_call("refund_order"))[:-1] + ', "pad": ' + "1" * 5000 + "}"
    response = httpx2.post(
        desk, content=body, headers={**HEADERS, **bearer(mint(None, desk, ["desk:read"]))}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700
    assert state(home) == before


# --------------------------------------------------------------------------- what works


@pytest.mark.parametrize("tool", sorted(CALLS))
async def test_a_token_with_exactly_the_tools_scope_runs_it(
    tool: str, url_of: dict[str, str], home: Path
) -> None:
    url = url_of[tool]
    before = state(home)
    async with connect(url, token=mint(None, url, [SCOPE_OF[tool]])) as client:
        result = await client.call_tool(tool, CALLS[tool])
    assert not result.is_error, result.content
    changed = {t for t, rows in state(home).items() if rows != before[t]}
    # (the table a write must change, others it may change: totals, timestamps, counters)
    must, may = {
        "refund_order": ("refunds", {"orders"}),
        "send_email": ("emails", set()),
        "update_ticket": ("tickets", set()),
        "add_ticket_note": ("ticket_notes", {"tickets"}),
        "create_ticket": ("tickets", {"ticket_notes"}),
    }.get(tool, ("", set()))
    bookkeeping = {"idempotency_ledger", "sqlite_sequence"}
    if must:
        assert must in changed and changed <= {must, *may, *bookkeeping}, changed
    else:
        assert not changed, changed  # a read changes nothing


async def test_any_valid_token_may_list_tools_and_get_prompts(desk: str, knowledge: str) -> None:
    async with connect(desk, token=mint(None, desk, [])) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        prompt = await client.get_prompt("handle_refund_request", {"order_id": "ORD-1042"})
    assert tools == set(DESK_TOOL_SCOPES)
    assert prompt.messages
    async with connect(knowledge, token=mint(None, knowledge, ["desk:read"])) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == set(KB_TOOL_SCOPES)


def test_healthz_stays_open(desk: str) -> None:
    response = httpx2.get(desk.replace("/mcp", "/healthz"), timeout=5.0)
    assert response.json() == {"status": "ok", "server": "support-desk"}


@pytest.mark.parametrize(("server", "scopes"), [("desk", DESK_SCOPES), ("knowledge", KB_SCOPES)])
def test_the_protected_resource_metadata_lists_the_scopes(
    server: str, scopes: tuple[str, ...], request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue(server)
    metadata = httpx2.get(metadata_url(url), timeout=5.0).json()
    assert metadata["resource"] == url
    assert metadata["authorization_servers"] == [LOCAL_ISSUER]
    assert metadata["scopes_supported"] == sorted(scopes)
    assert metadata["bearer_methods_supported"] == ["header"]


async def test_every_call_is_logged_with_its_principal(desk: str, home: Path) -> None:
    token = mint(None, desk, ["desk:read"], sub="alice", client_id="keel-worker",
                 act={"sub": "keel-worker"}, keel_run="run-logged", roles=["agent"])  # fmt: skip
    async with connect(desk, token=token) as client:
        await client.call_tool("get_order", CALLS["get_order"])
    post(desk, tool_call("send_email"), token)  # refused: no desk:email
    lines = [json.loads(line) for line in (home / "desk.log").read_text().splitlines()
             if line.startswith("{") and "run-logged" in line]  # fmt: skip
    by_event = {line["event"]: line for line in lines}
    allowed, refused = by_event["tool call"], by_event["tool call refused: insufficient scope"]
    expected = {
        "sub": "alice", "act": {"sub": "keel-worker"}, "keel_run": "run-logged",
        "client_id": "keel-worker", "roles": ["agent"], "component": "support-desk",
    }  # fmt: skip
    assert {**allowed, **expected} == allowed and allowed["tool"] == "get_order"
    assert {**refused, **expected} == refused and refused["scope"] == "desk:email"
    assert token not in (home / "desk.log").read_text()


# --------------------------------------------------------------------------- start-up


@pytest.mark.parametrize(
    ("module", "how"),
    [("mcp_servers.support_desk", "flag"), ("mcp_servers.knowledge", "variable")],
)
async def test_insecure_no_auth_warns_and_serves_anonymous_calls(
    module: str, how: str, tmp_path: Path
) -> None:
    args = ["--insecure-no-auth"] if how == "flag" else []
    env = clean_env(**({"KEEL_INSECURE_NO_AUTH": "1"} if how == "variable" else {}))
    if module.endswith("support_desk"):
        args += ["--db", str(tmp_path / "desk.db")]
    for url in start("open", module, tmp_path, *args, env=env):
        async with Client(url) as client:  # no token at all
            assert (await client.list_tools()).tools
        assert httpx2.get(metadata_url(url), timeout=5.0).status_code == 404
    log = (tmp_path / "open.log").read_text()
    assert "warning: --insecure-no-auth: this server checks no access tokens" in log
    assert '"event": "no access tokens checked"' in log


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no token keys: give --jwks FILE|URL (or KEEL_AUTH_JWKS), or run without access"
             " tokens with --insecure-no-auth (or KEEL_INSECURE_NO_AUTH=1)"),
        (["--jwks", "/nowhere/jwks.json"], "cannot read JWKS /nowhere/jwks.json"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("module", ["mcp_servers.support_desk", "mcp_servers.knowledge"])
def test_a_server_without_keys_refuses_to_start(
    module: str, args: list[str], message: str, tmp_path: Path
) -> None:
    argv = python_argv("-m", module, "--port", str(free_port()), *args)
    if module.endswith("support_desk"):
        argv += ["--db", str(tmp_path / "desk.db")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO,
                          env=clean_env())  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_stdio_needs_no_keys(tmp_path: Path) -> None:
    """The process boundary is the trust boundary: stdio starts without JWKS (and serves)."""
    request = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    argv = python_argv("-m", "mcp_servers.knowledge", "--transport", "stdio")
    done = subprocess.run(argv, input=json.dumps(request) + "\n", capture_output=True,
                          text=True, timeout=60, cwd=REPO, env=clean_env())  # fmt: skip
    assert "no token keys" not in done.stderr
    assert done.returncode == 0, done.stderr
