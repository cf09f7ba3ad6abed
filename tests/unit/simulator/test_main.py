"""``python -m simulator`` start-up errors, in this process: ``simulator.__main__.main`` with
an argument list. A bad argument or an invalid scenario file must cost one line on stderr that
names the culprit, and exit 2, before anything is served (``uvicorn.run`` is replaced by a
failure here, so a start-up that got that far fails the test instead of serving). The
simulator over real HTTP is in tests/integration/test_simulator.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import uvicorn

from keel.procs import free_port
from simulator.__main__ import main


@dataclass
class Out:
    returncode: int
    stderr: str


RunCli = Callable[..., Out]


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Run ``python -m simulator <args>`` in this process; its exit code and its stderr."""

    def serve(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("the simulator started serving instead of refusing to start")

    monkeypatch.setattr(uvicorn, "run", serve)

    def run(*args: str) -> Out:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        return Out(code, capsys.readouterr().err)

    return run


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('[[turns]]\n[[turns.faults]]\nkind = "http"\n', "turns.0.faults.0"),
        ('[[turns]]\nconten = "typo"\n', "turns.0.conten"),
        ("turns = [\n", "invalid TOML"),
        ('description = "no turns"\n', "turns"),
    ],
)
def test_invalid_scenario_file_exits_2_naming_file_and_field(
    run_cli: RunCli, tmp_path: Path, toml: str, field: str
) -> None:
    (tmp_path / "good.toml").write_text('[[turns]]\ncontent = "ok"\n')
    bad = tmp_path / "broken.toml"
    bad.write_text(toml)
    result = run_cli("--port", str(free_port()), "--scenarios", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(bad) in lines[0]
    assert field in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_arguments_exit_2_with_one_line(run_cli: RunCli) -> None:
    result = run_cli("--port", "not-a-port")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "port" in lines[0]
