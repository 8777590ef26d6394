"""Where the schema's migrations live and which one is the newest (no SQLAlchemy needed)."""

from __future__ import annotations

from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"


def newest_revision() -> str:
    """The newest migration's revision: its file's name (``NNNN_name``, numbered in order)."""
    names = [p.stem for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")]
    return max(names)
