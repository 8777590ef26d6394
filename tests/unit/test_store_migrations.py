"""Migrations carry existing data forward (a database made by an older Claudomator)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import claudomator.store.store as store_module
from claudomator.models import TaskState
from claudomator.store import Store


def test_a_0001_database_is_upgraded_and_its_tasks_keep_working(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    cfg = Config()
    cfg.set_main_option("script_location", str(store_module._MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001_initial")
    engine.dispose()
    agent = json.dumps({"instructions": "old task"})
    with sqlite3.connect(db) as conn:
        conn.execute(
            "insert into tasks (id, name, description, agent, timeout, priority, priority_rank,"
            " tags, depends_on, parent_task_id, state, summary, question, cancel_requested,"
            " created_at, updated_at) values ('t1', 'old', '', ?, null, 'normal', 1, '[]', '[]',"
            " null, 'QUEUED', '', '', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            (agent,),
        )
    store = Store.open(db)
    try:
        task = store.get_task("t1")
        assert task.agent.instructions == "old task"
        assert task.acceptance_criteria == ""
        assert task.checker_for_task_id is None
        assert store.queued_tasks()[0].id == "t1"
        moved = store.transition("t1", TaskState.RUNNING, "claimed")
        assert moved.state == TaskState.RUNNING
        assert store.agent_statuses() == {}
        assert store.interactions_of("t1") == []
    finally:
        store.close()
    with sqlite3.connect(db) as conn:
        [(version,)] = conn.execute("select version_num from alembic_version").fetchall()
    assert version == _head()


def _head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(store_module._MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def test_processes_opening_a_new_database_together_all_succeed(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "fresh.db"
    code = "import sys; from claudomator.store import Store; Store.open(sys.argv[1]).close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(db)], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in procs]
    for proc in procs:
        if proc.stderr:
            proc.stderr.close()
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    with sqlite3.connect(db) as conn:
        [(version,)] = conn.execute("select version_num from alembic_version").fetchall()
    assert version == _head()
