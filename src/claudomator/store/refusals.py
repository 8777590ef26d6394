"""Why a SQLite database file refused a read or a write, in words a person can act on.

"disk I/O error" alone says neither that the disk is full nor that the file system is
read-only: the file system is asked. Shared by the SQL store's SQLite backend
(:mod:`claudomator.store.sqlite`) and the quick store (:mod:`claudomator.store.quick`); no
database library is imported here.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from claudomator.errors import StoreError

LOW_SPACE = 1024 * 1024
"""Bytes free below which a refused write is put down to a full disk."""


def refused(what: str, detail: str, database: str) -> StoreError:
    """A :class:`StoreError` saying ``what`` failed on the file ``database``, with the driver's
    ``detail`` and, where the file system says so, the cause (read-only, full, no permission)."""
    folder = Path(database).parent
    with contextlib.suppress(OSError):
        fs = os.statvfs(folder)
        if fs.f_flag & os.ST_RDONLY:
            detail = f"{detail} (the database is read-only: {folder} is on a read-only file system)"
        elif fs.f_bavail * fs.f_frsize < LOW_SPACE:
            detail = f"{detail} (no space left on device writing {folder})"
        elif not os.access(folder, os.W_OK):
            detail = f"{detail} (the database is read-only: no write permission on {folder})"
    return StoreError(f"{what} {database}: {detail}")
