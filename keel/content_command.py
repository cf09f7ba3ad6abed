"""``keel result RUN --content sha256:<hex> [--out FILE]``: content a run stored, by digest.

A run keeps large content (a long task, a full tool result, the conversation) in the content
store (keel/runtime/store/) and names it in history by digest (``ContentRef``; a step record's
``content_ref``). This reads it back from the store this process is configured with
(``KEEL_STORE``, the worker's), decrypted with the codec keys, digest-checked: text is printed
(control characters escaped on a terminal), anything else needs ``--out FILE``. ``keel/cli.py``
only registers the options. Content past the store's retention is gone: one line, exit 1.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from keel.contracts.content import DIGEST_PATTERN
from keel.contracts.errors import InputError
from keel.render import terminal_safe
from keel.runtime.config import Settings
from keel.runtime.store.blobs import ContentMissing
from keel.runtime.store.open import open_content_store


def add_arguments(cmd: argparse.ArgumentParser) -> None:
    """``--content`` and ``--out`` on ``keel result``."""
    cmd.add_argument(
        "--content",
        metavar="sha256:HEX",
        help="print content the run stored (a digest its step records name) instead of the result",
    )
    cmd.add_argument("--out", type=Path, metavar="FILE", help="with --content: write it to FILE")


async def run_content(args: argparse.Namespace, settings: Settings) -> int:
    """Print or write the content; exit 1 when the store does not hold it."""
    digest = str(args.content).strip().lower()
    if not re.match(DIGEST_PATTERN, digest):
        raise InputError(f"--content {args.content!r} is not a digest: expected sha256:<64 hex>")
    store = open_content_store(settings)
    try:
        data = await store.get(digest)
    except ContentMissing:
        print(
            f"keel: run {args.workflow_id}: the content store {store.describe()} holds no"
            f" {digest} (never stored there, or deleted past its retention)",
            file=sys.stderr,
        )
        return 1
    if args.out is not None:
        write(args.out, data)
        print(f"wrote {len(data):,} bytes of {digest} to {args.out}", file=sys.stderr)
        return 0
    try:
        text = data.decode()
    except UnicodeDecodeError:
        print(f"keel: {digest} is {len(data):,} bytes of binary content: use --out FILE",
              file=sys.stderr)  # fmt: skip
        return 1
    sys.stdout.write(terminal_safe(text, multiline=True) if sys.stdout.isatty() else text)
    if text and not text.endswith("\n"):
        sys.stdout.write("\n")
    return 0


def write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
