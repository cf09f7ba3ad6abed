"""``keel`` command-line mistakes, in this process: ``keel.cli.main`` with an argument list,
as ``python -m keel`` calls it. A mistake a person makes at the keyboard must cost one
readable line and exit 2, before Temporal is contacted: TEMPORAL_ADDRESS points where nothing
listens, so a command that got that far would say 'cannot reach Temporal' instead. The
commands against a real stack are in tests/integration/test_cli*.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from keel.cli import main
from keel.procs import free_port


@dataclass
class Out:
    returncode: int
    stdout: str
    stderr: str


Keel = Callable[..., Out]


@pytest.fixture
def keel(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Keel:
    """Run ``keel <args>`` in this process; its exit code and what it printed."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")

    def run(*args: str) -> Out:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        printed = capsys.readouterr()
        return Out(code, printed.out, printed.err)

    return run


def user_error(out: Out) -> str:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    return out.stderr.strip()


def test_edit_with_malformed_json_is_refused_before_contacting_temporal(keel: Keel) -> None:
    out = keel("edit", "some-run", "apr-1-call_0_1", "--arguments", "{bad")
    message = user_error(out)
    assert message.startswith("keel: --arguments is not valid JSON: ")
    assert len(message.splitlines()) == 1
    assert "cannot reach Temporal" not in message


def test_edit_arguments_must_be_a_json_object(keel: Keel) -> None:
    out = keel("edit", "some-run", "apr-1-call_0_1", "--arguments", "[1]")
    message = user_error(out)
    assert "--arguments must be a JSON object" in message
    assert "cannot reach Temporal" not in message


def test_reject_needs_a_reason(keel: Keel) -> None:
    out = keel("reject", "some-run", "apr-1-call_0_1")
    message = user_error(out)
    assert "the following arguments are required: --reason" in message


def test_resolve_confirm_needs_a_result(keel: Keel) -> None:
    message = user_error(keel("resolve", "some-run", "--confirm", "  "))
    assert message == "keel: --confirm needs the result the call had (what the model is told)"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "one of the arguments --confirm --retry --abort is required"),
        (("--retry", "--abort"), "argument --abort: not allowed with argument --retry"),
    ],
)
def test_resolve_takes_exactly_one_action(keel: Keel, args: tuple[str, ...], expected: str) -> None:
    assert expected in user_error(keel("resolve", "some-run", *args))


def test_eval_mistakes_are_one_line_before_any_process_starts(keel: Keel, tmp_path: Path) -> None:
    missing = user_error(keel("eval", "evals/no-such-dataset.toml"))
    assert missing.startswith("keel: cannot read dataset evals/no-such-dataset.toml")
    assert "\n" not in missing
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[configs.a]\nspec = "profile:quick"\n[[tasks]]\nid = "t"\n')
    line = user_error(keel("eval", str(bad)))
    assert line == f"keel: {bad}: tasks.0.task: Field required"
    small = "tests/evals/small.toml"
    assert "no such config" in user_error(keel("eval", small, "--config", "nope"))
    assert "-k must be at least 1" in user_error(keel("eval", small, "-k", "0"))
    assert "no such task(s)" in user_error(keel("eval", small, "--tasks", "quick-answer,zzz"))
    unknown = user_error(keel("eval", small, "--config", "quick=profile:no-such-profile"))
    assert "no-such-profile" in unknown and "\n" not in unknown
