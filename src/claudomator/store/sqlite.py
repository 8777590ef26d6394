"""The SQLite backend: engine and pragmas, migrating under a file lock, the writer lock, and
error messages that say why a database file refused a write (full disk, read-only).

:func:`open_sqlite` is what :meth:`claudomator.store.Store.open` does.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from claudomator.errors import StoreError
from claudomator.store.refusals import refused
from claudomator.store.sql.store import SqlStore

logger = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT = 10.0
"""Seconds a write waits for another process's lock before the database refuses it."""


def create_engine(url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Engine:
    """An engine for ``url``; on SQLite with WAL, a busy timeout, foreign keys enforced."""
    parsed = sa.make_url(url)
    in_memory = parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")
    # Enough pooled connections for the API's worker threads: past the pool size, every
    # request would open (and set up) a new connection and close it again.
    pooling: dict[str, Any] = {} if in_memory else {"pool_size": 20, "max_overflow": 20}
    engine = sa.create_engine(url, **pooling)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def database_error(what: str, exc: sa.exc.SQLAlchemyError, engine: Engine) -> StoreError:
    """A :class:`StoreError` naming the database file and, where the file system says so, the
    cause: a full disk or a read-only file system ("disk I/O error" alone says neither)."""
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database:
        return StoreError(f"{what} {engine.url.render_as_string()}: {detail}")
    return refused(what, detail, database)


def open_sqlite(url_or_path: str | Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> SqlStore:
    """Open (creating and migrating as needed) a database by SQLite file path or URL.

    ``busy_timeout``: seconds a statement waits for another process's lock (SQLite).
    """
    url = str(url_or_path)
    if "://" not in url:
        path = Path(url).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        store = _store(create_engine(f"sqlite:///{path}", busy_timeout))
        # processes starting together on a new file must not both create the schema
        with path.with_name(path.name + ".migrate.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            store.migrate()
        return store
    store = _store(create_engine(url, busy_timeout))
    store.migrate()
    return store


def _store(engine: Engine) -> SqlStore:
    # Writers of this process queue here, in order, rather than in SQLite's busy handler,
    # which sleeps in growing steps (up to 100 ms) and so caps concurrent writes at a few
    # hundred a second. Other processes still meet through the busy timeout.
    return SqlStore(engine, write_lock=threading.RLock(), explain=database_error)
