"""``keel result RUN --content sha256:…``: content from the stack's store, as a user runs it
(a subprocess with the stack's client environment: its codec keys and its store)."""

from __future__ import annotations

from pathlib import Path

from keel.runtime.store.open import open_content_store
from keel.stack import Stack
from tests.helpers import keel, stack_settings

RUN = "cli-content-run"


async def test_text_content_is_printed_and_written(stack: Stack, tmp_path: Path) -> None:
    text = "the full tool result: ünïcode, \x1b[31mred\x1b[0m and all\n" * 100
    ref = await open_content_store(stack_settings(stack)).put(text.encode(), "text/plain")
    out = keel(stack, "result", RUN, "--content", ref.digest)
    assert out.returncode == 0, out.stderr
    assert out.stdout == text  # not a terminal: the bytes as stored
    target = tmp_path / "content.txt"
    written = keel(stack, "result", RUN, "--content", ref.digest, "--out", str(target))
    assert written.returncode == 0, written.stderr
    assert target.read_bytes() == text.encode()
    assert written.stdout == ""
    assert f"wrote {len(text.encode()):,} bytes of {ref.digest}" in written.stderr


async def test_binary_content_needs_out(stack: Stack, tmp_path: Path) -> None:
    data = bytes(range(256)) * 10
    ref = await open_content_store(stack_settings(stack)).put(data, "application/octet-stream")
    out = keel(stack, "result", RUN, "--content", ref.digest)
    assert out.returncode == 1
    assert (
        out.stderr.strip() == f"keel: {ref.digest} is 2,560 bytes of binary content: use --out FILE"
    )
    target = tmp_path / "blob.bin"
    assert keel(stack, "result", RUN, "--content", ref.digest, "--out", str(target)).returncode == 0
    assert target.read_bytes() == data


def test_unknown_digest_is_one_line_and_exit_1(stack: Stack) -> None:
    digest = "sha256:" + "e" * 64
    out = keel(stack, "result", RUN, "--content", digest)
    assert out.returncode == 1
    [line] = out.stderr.splitlines()
    assert line.startswith(f"keel: run {RUN}: the content store ")
    assert f"holds no {digest}" in line
    assert out.stdout == ""


def test_malformed_digest_is_refused(stack: Stack) -> None:
    out = keel(stack, "result", RUN, "--content", "md5:abc")
    assert out.returncode == 2
    assert "--content 'md5:abc' is not a digest: expected sha256:<64 hex>" in out.stderr
    assert "Traceback" not in out.stderr
