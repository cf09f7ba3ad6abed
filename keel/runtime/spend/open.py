"""Open the spend store the settings name (``KEEL_SPEND_URL``, else the SQLite default)."""

from __future__ import annotations

from pathlib import Path

from keel.contracts.errors import ConfigError
from keel.runtime.spend.store import SpendStore


async def open_spend_store(url: str) -> SpendStore:
    """``postgresql://…`` (or ``postgres://``): PostgreSQL; ``sqlite:///path`` or a plain path:
    a SQLite file. An unknown scheme is a ConfigError naming the variable."""
    if url.startswith(("postgresql://", "postgres://")):
        from keel.runtime.spend.postgres import PostgresSpendStore

        return await PostgresSpendStore.create(url)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite://") :]
    elif "://" in url:
        raise ConfigError(f"KEEL_SPEND_URL={url!r}: expected postgresql://… or a SQLite path")
    from keel.runtime.spend.sqlite import SQLiteSpendStore

    return SQLiteSpendStore(Path(url))
