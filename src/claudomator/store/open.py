"""Open the store a ``database_url`` names: the one place that maps URLs to backends."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from claudomator.errors import StoreError

if TYPE_CHECKING:
    from claudomator.store.base import Store

MEMORY_URL = "memory://"
"""An in-memory store (gone with the process): for tests."""


def backend_of(url: str) -> str:
    """The backend ``url`` names ("sqlite", "memory"); StoreError for any other."""
    if url == MEMORY_URL:
        return "memory"
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return "sqlite"
    raise StoreError(f"unsupported database URL {url!r}: expected sqlite:///<path to a file>")


def open_store(url_or_path: str | Path, *, quick: bool = False) -> Store:
    """Open (creating and migrating) the store at ``url_or_path``: a SQLite file path, a
    ``sqlite:///<path>`` URL (the same file), or ``memory://``; StoreError for anything else.

    ``quick``: for a short command, a SQLite file already at the newest revision opens as a
    :class:`~claudomator.store.quick.QuickStore` (no SQLAlchemy until a method needs it).
    """
    url = str(url_or_path)
    if "://" in url:
        if backend_of(url) == "memory":
            from claudomator.store.memory import MemoryStore

            return MemoryStore()
        path = url.removeprefix("sqlite:///")
        if path != ":memory:":
            url = path  # a file: its folder created, migrated under its lock, as a plain path
    if quick and url != ":memory:":
        from claudomator.store.quick import open_quick

        opened = open_quick(Path(url).expanduser())
        if opened is not None:
            return opened
    from claudomator.store.sqlite import open_sqlite

    return open_sqlite(url)
