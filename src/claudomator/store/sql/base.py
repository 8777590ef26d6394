"""What every part of the SQL store shares: the engine, reads, write transactions, migrations.

Nothing here knows a dialect: a backend (:mod:`claudomator.store.sqlite`) builds the engine and
hands in its writer lock and how it explains a database error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from claudomator.errors import StoreError
from claudomator.store.backlog import WriteBacklog
from claudomator.store.revisions import MIGRATIONS, newest_revision

logger = logging.getLogger(__name__)

MAX_RACE_RETRIES = 5

Explain = Callable[[str, sa.exc.SQLAlchemyError, Engine], StoreError]
"""Turns a database error into a :class:`StoreError` (``what``, the error, the engine)."""


def explain_plainly(what: str, exc: sa.exc.SQLAlchemyError, engine: Engine) -> StoreError:
    """A :class:`StoreError` naming the database's URL and the driver's first line."""
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return StoreError(f"{what} {engine.url.render_as_string()}: {detail}")


class SqlBase:
    """An engine, a way to read, a way to write (one transaction), and the schema's migrations."""

    def __init__(
        self,
        engine: Engine,
        *,
        write_lock: AbstractContextManager[object] | None = None,
        explain: Explain = explain_plainly,
    ) -> None:
        self._engine = engine
        # the backend's lock around this process's writers (SQLite: one writer at a time)
        self._write_lock: AbstractContextManager[object] = write_lock or contextlib.nullcontext()
        self._explain = explain
        self.backlog = WriteBacklog()  # writes refused by the database and being retried

    def migrate(self) -> None:
        """Apply every Alembic migration not yet applied.

        A database already at the newest revision is recognised with one query, without
        loading Alembic (which costs a command-line call a tenth of a second).
        """
        if self._revision() == newest_revision():
            return
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self._engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except sa.exc.SQLAlchemyError as exc:
            raise self._explain("cannot migrate database", exc, self._engine) from exc

    def _revision(self) -> str | None:
        """The database's Alembic revision (None for a new or unversioned database)."""
        try:
            with self._engine.connect() as conn:
                if not sa.inspect(conn).has_table("alembic_version"):
                    return None
                found = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                rows = [str(r[0]) for r in found]
        except sa.exc.SQLAlchemyError as exc:
            raise self._explain("cannot read database", exc, self._engine) from exc
        return rows[0] if len(rows) == 1 else None

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise self._explain("cannot read database", exc, self._engine) from exc

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self._write_lock, self._engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise self._explain("cannot write database", exc, self._engine) from exc
