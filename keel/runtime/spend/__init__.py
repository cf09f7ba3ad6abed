"""The spend ledger: every paid model call across runs, and the alerts already sent
(docs/operations.md, "Spend ledger and budgets"). SQLite by default, PostgreSQL for several
workers (``KEEL_SPEND_URL``)."""

from keel.runtime.spend.open import open_spend_store
from keel.runtime.spend.store import BY, PaidCall, SpendStore, Total, periods

__all__ = ["BY", "PaidCall", "SpendStore", "Total", "open_spend_store", "periods"]
