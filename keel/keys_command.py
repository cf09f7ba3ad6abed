"""``keel keys init | rotate-signing | rotate-codec [--dir DIR]``: the embedded default's key
files (:mod:`keel.runtime.keys`) without starting the stack.

``make up`` creates the same files when it starts; this command is for docker compose (which
mounts them as secrets, docs/security.md) and for rotation. The directory defaults to where
the worker and the CLI look for the files: ``KEEL_KEYS_DIR``, else ``<KEEL_HOME>/keys``
(``.keel/keys``). ``keel/cli.py`` only registers the command.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from keel.contracts.errors import ConfigError
from keel.runtime.config import keys_dir
from keel.runtime.keys import LocalKeys, ensure_local_keys, rotate_codec_key, rotate_signing_key

ACTIONS = ("init", "rotate-signing", "rotate-codec")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``keys`` on the ``keel`` command's subparsers."""
    cmd = sub.add_parser(
        "keys", help="create or rotate the local key files (signing key, JWKS, codec keys)"
    )
    cmd.add_argument(
        "action",
        choices=ACTIONS,
        help="init: create what is missing (kept if present); rotate-signing: a new signing"
        " key, old public keys stay in jwks.json; rotate-codec: a new codec key, old ones"
        " still decrypt",
    )
    cmd.add_argument(
        "--dir",
        type=Path,
        help="the key directory (default: $KEEL_KEYS_DIR, else $KEEL_HOME/keys, i.e. .keel/keys)",
    )


def run_keys(args: argparse.Namespace) -> int:
    """Carry out ``keel keys``; a directory or file that cannot be used is a ConfigError."""
    directory: Path = args.dir if args.dir is not None else keys_dir(os.environ)
    try:
        if args.action == "init":
            lines = _init(directory)
        elif args.action == "rotate-signing":
            lines = _rotate_signing(directory)
        else:
            lines = _rotate_codec(directory)
    except OSError as exc:
        raise ConfigError(f"cannot use the key directory {directory}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the key files in {directory} are damaged: {exc}") from None
    print("\n".join(lines))
    return 0


def _init(directory: Path) -> list[str]:
    paths = LocalKeys(directory)
    before = {p.name for p in (paths.signing_key, paths.jwks, paths.codec_keys) if p.exists()}
    keys = ensure_local_keys(directory)
    rows = [
        (keys.signing_key, "private (0600): signs the worker's tokens and grants, keel token"),
        (keys.jwks, "public: what the MCP servers and the approval check trust"),
        (keys.codec_keys, "private (0600): the payload codec's keys"),
    ]
    lines = [f"keys in {directory}"]
    for path, what in rows:
        state = "kept" if path.name in before else "created"
        lines.append(f"  {path.name:<16} {state:<8} {what}")
    return lines


def _rotate_signing(directory: Path) -> list[str]:
    kid = rotate_signing_key(directory)
    published = json.loads(LocalKeys(directory).jwks.read_text())["keys"]
    return [
        f"new signing key {kid} in {directory}; jwks.json keeps {len(published) - 1} older"
        " public key(s), so tokens already issued still verify",
        "restart the worker to sign with it; the servers reload jwks.json when they see the"
        " new kid",
    ]


def _rotate_codec(directory: Path) -> list[str]:
    kid = rotate_codec_key(directory)
    keyring = json.loads(LocalKeys(directory).codec_keys.read_text())["keys"]
    return [
        f"new codec key {kid} in {directory} encrypts from now on; {len(keyring) - 1} older"
        " key(s) still decrypt",
        "restart the codec server, then the worker, so both use it",
    ]
