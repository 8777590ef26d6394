"""The store on a real SQLite file: WAL, tables, migrations, URLs, the driver's integrity errors.

What every backend does (tasks, transitions, executions...) is in tests/contract/.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa

from claudomator.config import Settings
from claudomator.models import (
    AgentConfig,
    Execution,
    Task,
    TaskState,
)
from claudomator.store import Store

S = TaskState


def _task(name: str = "t", **fields: object) -> Task:
    agent = AgentConfig(instructions=f"do {name}", model="opus", allowed_tools=("Bash",))
    return Task.model_validate({"name": name, "agent": agent, **fields})


def _sql(db: Path, query: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return list(conn.execute(query).fetchall())


def _events(store: Store, task_id: str) -> list[tuple[TaskState | None, TaskState, str]]:
    return [(e.from_state, e.to_state, e.reason) for e in store.events(task_id)]


def _to(store: Store, task_id: str, *path: TaskState) -> None:
    for state in path:
        store.transition(task_id, state, f"to {state}")


# -- opening ----------------------------------------------------------------------------------


def test_journal_mode_is_wal(store: Store, settings: Settings) -> None:
    assert settings.db_path.is_file()
    assert _sql(settings.db_path, "PRAGMA journal_mode") == [("wal",)]


def test_tables_exist(store: Store, settings: Settings) -> None:
    names = {
        r[0] for r in _sql(settings.db_path, "SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert {"tasks", "executions", "task_events", "alembic_version"} <= names


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    import claudomator.store.store as store_module

    head = ScriptDirectory(str(store_module._MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def test_migrations_form_one_chain_starting_at_the_initial_schema() -> None:
    from alembic.script import ScriptDirectory

    import claudomator.store.store as store_module

    scripts = ScriptDirectory(str(store_module._MIGRATIONS))
    revisions = list(scripts.walk_revisions())
    assert len(scripts.get_heads()) == 1
    assert revisions[-1].revision == "0001_initial"


def test_opening_twice_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "dir" / "c.db"  # parent directories are created
    first = Store.open(db)
    [task] = first.add_tasks([_task("kept")])
    first.close()
    versions = _sql(db, "SELECT version_num FROM alembic_version")
    assert versions == [(_head_revision(),)]
    second = Store.open(db)
    try:
        assert second.get_task(task.id).name == "kept"
    finally:
        second.close()
    assert _sql(db, "SELECT version_num FROM alembic_version") == versions


def test_open_accepts_a_url(tmp_path: Path) -> None:
    db = tmp_path / "url.db"
    s = Store.open(f"sqlite:///{db}")
    s.close()
    assert db.is_file()


# -- what only the SQL store raises -----------------------------------------------------


def test_add_tasks_is_all_or_nothing(store: Store) -> None:
    a, b = _task("a"), _task("b")
    with pytest.raises(sa.exc.IntegrityError):
        store.add_tasks([a, b, a])
    assert store.list_tasks() == []
    assert store.events(a.id) == []
    assert store.events(b.id) == []


def test_executions_need_an_existing_task(store: Store) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        store.add_execution(Execution(task_id="no-such-task"))
