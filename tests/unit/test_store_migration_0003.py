"""Migration 0003 (intake keys) keeps older data, and the store's intake-key operations."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

import claudomator.store.store as store_module
from claudomator.models import AgentConfig, Task, TaskState, utcnow
from claudomator.store import Store
from claudomator.store.tables import intake_keys

HEAD = ScriptDirectory(str(store_module._MIGRATIONS)).get_current_head()


def test_a_0002_database_is_upgraded_to_0003_with_its_data(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    cfg = Config()
    cfg.set_main_option("script_location", str(store_module._MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002_questions_agents_checks")
    engine.dispose()
    agent = json.dumps({"instructions": "old task", "project_dir": "/srv/app"})
    with sqlite3.connect(db) as conn:
        conn.execute(
            "insert into tasks (id, name, description, agent, timeout, priority, priority_rank,"
            " tags, depends_on, parent_task_id, state, summary, question, cancel_requested,"
            " acceptance_criteria, checker_for_task_id, check_verdict, check_report,"
            " created_at, updated_at) values ('t1', 'old', 'd', ?, 60, 'high', 2, '[\"x\"]',"
            " '[]', null, 'FAILED', 'did it', '', 0, 'tests pass', null, 'fail', 'no',"
            " '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            (agent,),
        )
        conn.execute(
            "insert into agent_status (agent, limited_until, unavailable_until,"
            " consecutive_failures, rate_limit_strikes, last_error, updated_at)"
            " values ('claude', null, null, 2, 1, 'oops', '2026-01-01 00:00:00')"
        )
    store = Store.open(db)
    try:
        task = store.get_task("t1")
        assert (task.name, task.description, task.timeout, task.tags) == ("old", "d", 60, ("x",))
        assert task.agent.project_dir == "/srv/app"
        assert (task.state, task.summary) == (TaskState.FAILED, "did it")
        assert (task.acceptance_criteria, task.check_verdict, task.check_report) == (
            "tests pass",
            "fail",
            "no",
        )
        assert store.agent_status("claude").consecutive_failures == 2
        assert store.intake_holder("github:o/r:sha:test") is None
        assert store.reserve_intake_key("github:o/r:sha:test", "t1") is None
        assert store.intake_holder("github:o/r:sha:test") == "t1"
        assert store.transition("t1", TaskState.QUEUED, "retry").state == TaskState.QUEUED
    finally:
        store.close()
    with sqlite3.connect(db) as conn:
        [(version,)] = conn.execute("select version_num from alembic_version").fetchall()
        indexes = {row[1] for row in conn.execute("pragma index_list('intake_keys')")}
    assert version == HEAD  # upgraded through 0003 to the newest migration
    assert "ix_intake_keys_task_id" in indexes


def test_0003_downgrades_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    Store.open(db).close()
    engine = sa.create_engine(f"sqlite:///{db}")
    cfg = Config()
    cfg.set_main_option("script_location", str(store_module._MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002_questions_agents_checks")
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("intake_keys")
    engine.dispose()


def stored_task(store: Store) -> Task:
    [task] = store.add_tasks([Task(name="t", agent=AgentConfig(instructions="i"))])
    return task


def test_a_reserved_key_belongs_to_its_task(store: Store) -> None:
    task = stored_task(store)
    assert store.reserve_intake_key("k", task.id) is None
    assert store.reserve_intake_key("k", "another") == task.id
    assert store.intake_holder("k") == task.id
    store.release_intake_key("k", "another")  # not its holder: nothing happens
    assert store.intake_holder("k") == task.id
    store.release_intake_key("k", task.id)
    assert store.intake_holder("k") is None
    assert store.reserve_intake_key("k", "another") is None


def test_a_reservation_whose_task_never_came_expires(store: Store) -> None:
    assert store.reserve_intake_key("k", "never-stored") is None
    assert store.intake_holder("k") == "never-stored"  # its task may be on its way
    assert store.reserve_intake_key("k", "second") == "never-stored"
    assert store.intake_holder("k", stale_after=0) is None  # stale: the reserver died
    assert store.reserve_intake_key("k", "second", stale_after=0) is None
    assert store.intake_holder("k") == "second"


def test_a_key_whose_task_was_deleted_is_free_once_stale(store: Store) -> None:
    task = stored_task(store)
    assert store.reserve_intake_key("k", task.id) is None
    assert store.intake_holder("k", stale_after=0) == task.id  # the task exists: holds forever
    store.delete_task(task.id, not_in=())
    assert store.intake_holder("k", stale_after=0) is None
    old = utcnow() - timedelta(hours=1)
    with store._tx() as conn:
        conn.execute(intake_keys.update().values(created_at=old))
    assert store.intake_holder("k") is None


def test_concurrent_reservations_have_one_winner(store: Store) -> None:
    count = 8
    barrier = threading.Barrier(count)
    results: dict[str, str | None] = {}
    lock = threading.Lock()

    def reserve(me: str) -> None:
        barrier.wait()
        holder = store.reserve_intake_key("github:o/r:sha:test", me)
        with lock:
            results[me] = holder

    threads = [threading.Thread(target=reserve, args=(f"task-{n}",)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [me for me, holder in results.items() if holder is None]
    assert len(results) == count
    assert len(winners) == 1
    assert {holder for holder in results.values() if holder is not None} == set(winners)
