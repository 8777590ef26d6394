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


def test_0006_back_fills_the_project_and_tag_filters(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    cfg = Config()
    cfg.set_main_option("script_location", str(store_module._MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005_stories")
    engine.dispose()
    rows = [
        ("t1", {"instructions": "x", "project_dir": "/srv/web"}, ["ui", "urgent", "ui"]),
        ("t2", {"instructions": "x"}, ["urgent"]),
    ]
    with sqlite3.connect(db) as conn:
        for task_id, agent, tags in rows:
            conn.execute(
                "insert into tasks (id, name, description, agent, timeout, priority,"
                " priority_rank, tags, depends_on, parent_task_id, state, summary, question,"
                " cancel_requested, acceptance_criteria, check_verdict, check_report,"
                " created_at, updated_at) values (?, ?, '', ?, null, 'normal', 1, ?, '[]',"
                " null, 'QUEUED', '', '', 0, '', '', '', '2026-01-01 00:00:00',"
                " '2026-01-01 00:00:00')",
                (task_id, task_id, json.dumps(agent), json.dumps(tags)),
            )
    store = Store.open(db)
    try:
        assert [t.id for t in store.list_tasks(project_dir="/srv/web")] == ["t1"]
        assert {t.id for t in store.list_tasks(project_dir="")} == {"t2"}
        assert {t.id for t in store.list_tasks(tags=["urgent"])} == {"t1", "t2"}
        assert [t.id for t in store.list_tasks(tags=["ui", "urgent"])] == ["t1"]
        assert store.get_task("t1").tags == ("ui", "urgent", "ui")  # the order is the task's
        assert store.push_subscriptions() == []
    finally:
        store.close()


def test_0009_keeps_old_executions_with_a_known_cost_and_no_delivery(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    cfg = Config()
    cfg.set_main_option("script_location", str(store_module._MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008_delivery_intents")
    engine.dispose()
    with sqlite3.connect(db) as conn:
        conn.execute(
            "insert into tasks (id, name, description, agent, timeout, priority,"
            " priority_rank, tags, depends_on, parent_task_id, state, summary, question,"
            " cancel_requested, acceptance_criteria, check_verdict, check_report,"
            " created_at, updated_at, project_dir) values ('t1', 't1', '', '{\"instructions\":"
            " \"x\"}', null, 'normal', 1, '[]', '[]', null, 'COMPLETED', '', '', 0, '', '', '',"
            " '2026-01-01 00:00:00', '2026-01-01 00:00:00', '')"
        )
        conn.execute(
            "insert into executions (id, task_id, agent, model, start_time, end_time,"
            " exit_code, status, stdout_path, stderr_path, cost_usd, cost_estimated, tokens_in,"
            " tokens_out, error_msg, session_id, sandbox_dir, commits, changestats, summary,"
            " worker_id, pid) values ('e1', 't1', 'claude', 'm', '2026-01-01 00:00:00', null,"
            " 0, 'COMPLETED', '', '', 0.5, 0, 1, 2, '', '', '', '[]', '{}', '', '', null)"
        )
    store = Store.open(db)
    try:
        execution = store.get_execution("e1")
        assert execution.cost_known is True
        assert execution.delivery is None
        assert execution.cost_usd == 0.5
    finally:
        store.close()


def test_the_migrated_schema_matches_the_table_definitions(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from claudomator.store.tables import metadata

    Store.open(tmp_path / "fresh.db").close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_the_newest_revision_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(store_module._MIGRATIONS))
    assert store_module.newest_revision() == ScriptDirectory.from_config(cfg).get_current_head()


def test_an_up_to_date_database_opens_without_loading_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "c.db"
    Store.open(db).close()  # created and migrated
    probe = (
        "import sys; from claudomator.store import Store; "
        f"Store.open({str(db)!r}).close(); print('alembic' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
    with sqlite3.connect(db) as conn:  # and an old one is still upgraded
        conn.execute("UPDATE alembic_version SET version_num = '0008_delivery_intents'")
        conn.execute("ALTER TABLE executions DROP COLUMN delivery")
        conn.execute("ALTER TABLE executions DROP COLUMN cost_known")
        conn.execute("ALTER TABLE executions DROP COLUMN confinement")  # and 0010's
        conn.execute("ALTER TABLE tasks DROP COLUMN isolation")
        for column in ("launcher", "network", "read_only_paths", "allowed_endpoints"):
            conn.execute(f"ALTER TABLE projects DROP COLUMN {column}")
    Store.open(db).close()
    with sqlite3.connect(db) as conn:
        [version] = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        columns = {r[1] for r in conn.execute("PRAGMA table_info(executions)")}
    assert version == store_module.newest_revision()
    assert {"delivery", "cost_known", "confinement"} <= columns
