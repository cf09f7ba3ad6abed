"""Per-run sandboxes of a server's database (mcp_servers/shared/sandbox.py), in this process:
which file each call uses, first-use copies of the template, the bound, bad run names. The
real desk serving concurrent sandboxed runs is tests/integration/test_eval.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mcp.server.mcpserver.exceptions import ToolError

from keel.contracts.names import META_RUN
from mcp_servers.shared.sandbox import Sandboxes, routed
from mcp_servers.support_desk.__main__ import _seed
from mcp_servers.support_desk.db import SupportDesk


def refunded(desk: SupportDesk, order: str = "ORD-1050") -> float:
    return desk.get_order(order).refunded


async def test_each_run_gets_its_own_copy_of_the_seeded_template(tmp_path: Path) -> None:
    main = tmp_path / "desk.db"
    _seed(main)
    desk = SupportDesk(main)
    desk.refund_order("ORD-1050", 500, "damaged", None)  # a change in the main DB only
    sandboxes = Sandboxes(main, _seed)
    sandboxes.reset()
    async with sandboxes.scope({META_RUN: "run-a"}):
        assert routed(main) == sandboxes.path_of("run-a") != main
        assert routed(tmp_path / "other.db") == tmp_path / "other.db"
        assert refunded(desk) == 0.0  # fresh seed, not the main DB
        desk.refund_order("ORD-1050", 2000, "damaged", None)
        assert refunded(desk) == 20.0
    async with sandboxes.scope({META_RUN: "run-b"}):
        assert refunded(desk) == 0.0
    async with sandboxes.scope({META_RUN: "run-a"}):
        assert refunded(desk) == 20.0  # the same sandbox again
    async with sandboxes.scope({}):
        assert routed(main) == main
        assert refunded(desk) == 5.0
    assert routed(main) == main
    files = sorted(p.name for p in sandboxes.directory.iterdir())
    assert files == sorted(
        ["template.db", *(sandboxes.path_of(r).name for r in ("run-a", "run-b"))]
    )


async def test_reset_empties_the_directory(tmp_path: Path) -> None:
    main = tmp_path / "desk.db"
    sandboxes = Sandboxes(main, _seed)
    sandboxes.reset()
    async with sandboxes.scope({META_RUN: "r1"}):
        pass
    sandboxes.reset()
    assert [p.name for p in sandboxes.directory.iterdir()] == ["template.db"]
    with sqlite3.connect(sandboxes.template) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


async def test_the_number_of_sandboxes_is_bounded(tmp_path: Path) -> None:
    sandboxes = Sandboxes(tmp_path / "desk.db", _seed, limit=2)
    sandboxes.reset()
    for run in ("r1", "r2", "r1"):
        async with sandboxes.scope({META_RUN: run}):
            pass
    with pytest.raises(ToolError, match=r"sandbox limit reached \(2 runs\)"):
        async with sandboxes.scope({META_RUN: "r3"}):
            pass


@pytest.mark.parametrize("run", ["", 7, "x" * 256])
async def test_a_bad_run_name_is_refused(tmp_path: Path, run: object) -> None:
    sandboxes = Sandboxes(tmp_path / "desk.db", _seed)
    sandboxes.reset()
    with pytest.raises(ToolError, match=r"io\.keel/run"):
        async with sandboxes.scope({META_RUN: run}):
            pass


def test_a_run_name_is_never_a_path(tmp_path: Path) -> None:
    sandboxes = Sandboxes(tmp_path / "desk.db", _seed)
    path = sandboxes.path_of("../../etc/passwd")
    assert path.parent == sandboxes.directory and path.name.startswith("run-")
