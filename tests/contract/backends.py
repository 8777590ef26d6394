"""The store contract suite runs every test against every backend through one fixture.

Each test module of the suite imports :func:`store` (which overrides the SQLite-only ``store``
of ``tests/conftest.py``). A new backend (PostgreSQL) joins by adding its name to
:data:`BACKENDS` and how to open an empty one to :func:`store`. Not named ``conftest.py``: tests
import ``tests/conftest.py`` as ``conftest``, which a second one would shadow.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from claudomator.config import Settings
from claudomator.store import open_store
from claudomator.store.base import Store
from claudomator.store.quick import QuickStore

BACKENDS = ["sqlite", "memory", "quick"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Store]:
    """A new, empty store of each backend: a migrated SQLite file in the test's data dir, the
    in-memory store, or the quick store (``sqlite3``, the full store behind it) on a migrated
    SQLite file."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{settings.db_path}"
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    opened = open_store(url)
    if request.param == "quick":
        opened.close()
        opened = open_store(url, quick=True)
        assert isinstance(opened, QuickStore), "a migrated file opens quick"
    yield opened
    opened.close()
