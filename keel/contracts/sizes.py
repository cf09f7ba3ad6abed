"""How a size in bytes reads in the markers a model and a person see (``[image/png, 5 KB]``).

One function, so the worker's cut markers (activities/tool_results.py) and the workflow's
content markers (workflows/tools/catalog.py) always agree.
"""

from __future__ import annotations


def human_size(size: int) -> str:
    """``512 B``, ``5 KB``, ``1.4 MB`` (decimal units, as file browsers show them)."""
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.0f} KB"
    return f"{size / 1_000_000:.1f} MB"
