"""Persistence: the ports (:mod:`claudomator.store.base`) and their backends.

``Store`` here is the SQL store (:class:`claudomator.store.sql.store.SqlStore`, opened with
``Store.open(path_or_url)``); code that only uses a store types against
:class:`claudomator.store.base.Store`. Imported lazily: importing this package (or
:mod:`claudomator.store.base`, :mod:`claudomator.store.memory`) loads no SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claudomator.store.open import open_store
    from claudomator.store.sql.store import SqlStore as Store

__all__ = ["Store", "open_store"]


def __getattr__(name: str) -> Any:
    if name == "Store":
        from claudomator.store.sql.store import SqlStore

        return SqlStore
    if name == "open_store":
        from claudomator.store.open import open_store

        return open_store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
