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

BACKENDS = ["sqlite", "memory"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Store]:
    """A new, empty store of each backend: a migrated SQLite file in the test's data dir, or
    the in-memory store."""
    url = f"sqlite:///{settings.db_path}" if request.param == "sqlite" else "memory://"
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    opened = open_store(url)
    yield opened
    opened.close()
