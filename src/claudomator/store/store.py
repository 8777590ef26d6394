"""Where the SQL store used to live; kept so existing imports keep working.

The store is now :mod:`claudomator.store.base` (the ports), :mod:`claudomator.store.sql` (the
SQLAlchemy implementation), :mod:`claudomator.store.sqlite` (the SQLite backend) and
:mod:`claudomator.store.memory`.
"""

from __future__ import annotations

from claudomator.store.base import INTAKE_RESERVATION_SECONDS
from claudomator.store.revisions import MIGRATIONS as _MIGRATIONS
from claudomator.store.revisions import newest_revision
from claudomator.store.sql.store import SqlStore as Store
from claudomator.store.sqlite import DEFAULT_BUSY_TIMEOUT
from claudomator.store.sqlite import create_engine as _engine
from claudomator.store.sqlite import database_error as _database_error

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "INTAKE_RESERVATION_SECONDS",
    "_MIGRATIONS",
    "Store",
    "_database_error",
    "_engine",
    "newest_revision",
]
