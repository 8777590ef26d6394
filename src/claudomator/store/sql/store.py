"""The SQL store: every aggregate's queries over one engine.

State changes go through :meth:`TaskQueries.transition`, which asks the state machine in
:mod:`claudomator.models`, updates the row only if it is still in the state that was read
(optimistic, so two processes cannot both win), and records an event row — all in one
transaction. Nothing here is dialect-specific: :mod:`claudomator.store.sqlite` builds the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from claudomator.store.sql.catalog import CatalogQueries
from claudomator.store.sql.executions import ExecutionQueries
from claudomator.store.sql.records import RecordQueries
from claudomator.store.sql.stats import StatsQueries
from claudomator.store.sql.tasks import TaskQueries

if TYPE_CHECKING:
    from claudomator.store.base import Store


class SqlStore(TaskQueries, ExecutionQueries, RecordQueries, CatalogQueries, StatsQueries):
    """Tasks, executions and their event history in one SQL database."""

    @classmethod
    def open(cls, url_or_path: str | Path, *, busy_timeout: float | None = None) -> SqlStore:
        """Open (creating and migrating as needed) a database by URL or SQLite file path.

        ``busy_timeout``: seconds a statement waits for another process's lock (SQLite; default
        :data:`claudomator.store.sqlite.DEFAULT_BUSY_TIMEOUT`).
        """
        from claudomator.store.sqlite import DEFAULT_BUSY_TIMEOUT, open_sqlite

        timeout = DEFAULT_BUSY_TIMEOUT if busy_timeout is None else busy_timeout
        return open_sqlite(url_or_path, busy_timeout=timeout)


if TYPE_CHECKING:

    def _implements(store: SqlStore) -> Store:
        return store  # mypy checks here that SqlStore is a Store
