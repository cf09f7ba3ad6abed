"""Deterministic fallback workflows: what takes over a run that halted or failed
(docs/architecture.md, "Fallbacks"). Each runs as a child workflow of the run, with its own
history and result (``FallbackResult``)."""
