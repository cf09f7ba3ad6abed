"""``python -m keel`` runs the CLI."""

from keel.cli import entry

entry()
