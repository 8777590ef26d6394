"""The store contract: executions — on every backend.

Moved from ``tests/unit/test_store_sqlite.py`` (which keeps what only SQLite has: the file,
WAL, migrations); the ``store`` fixture (``backends.py``) gives each test every backend.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from claudomator.errors import IntegrityViolation, NotFound
from claudomator.models import (
    AgentConfig,
    ChangeStats,
    Commit,
    DeliveryRecord,
    Execution,
    Task,
    TaskState,
)
from claudomator.store.base import Store
from contract import backends

store = backends.store  # the fixture: each test runs on every backend

S = TaskState
REFUSED = (IntegrityViolation, sa.exc.IntegrityError)  # a duplicate id, a missing task


def _task(name: str = "t", **fields: object) -> Task:
    agent = AgentConfig(instructions=f"do {name}", model="opus", allowed_tools=("Bash",))
    return Task.model_validate({"name": name, "agent": agent, **fields})


def _events(store: Store, task_id: str) -> list[tuple[TaskState | None, TaskState, str]]:
    return [(e.from_state, e.to_state, e.reason) for e in store.events(task_id)]


def _to(store: Store, task_id: str, *path: TaskState) -> None:
    for state in path:
        store.transition(task_id, state, f"to {state}")


# -- executions -------------------------------------------------------------------------------


def _full_execution(task_id: str, start: datetime, **fields: object) -> Execution:
    values: dict[str, object] = {
        "task_id": task_id,
        "agent": "claude",
        "model": "claude-opus-5-5",
        "start_time": start,
        "end_time": start + timedelta(minutes=3, microseconds=250),
        "exit_code": 1,
        "status": S.FAILED,
        "stdout_path": "/data/logs/x/stdout.log",
        "stderr_path": "/data/logs/x/stderr.log",
        "cost_usd": 0.1234,
        "cost_estimated": True,
        "tokens_in": 12345678901,
        "tokens_out": 42,
        "error_msg": "API error 500: boom",
        "session_id": "sess-1",
        "sandbox_dir": "/data/sandboxes/x",
        "commits": (Commit(hash="a" * 40, message="first"), Commit(hash="b" * 40, message="二")),
        "changestats": ChangeStats(files=2, insertions=30, deletions=4),
        "delivery": DeliveryRecord(
            how="pushed",
            project_dir="/srv/web",
            remote="origin",
            url="/srv/web.git",
            branch="main",
            rebased=True,
        ),
        "cost_known": False,
        "summary": "did things",
        "worker_id": "host:123",
        "pid": 4242,
    }
    values.update(fields)
    return Execution.model_validate(values)


def test_execution_round_trips_every_field(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    start = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    execution = _full_execution(task.id, start)
    store.add_execution(execution)
    loaded = store.get_execution(execution.id)
    assert loaded == execution
    assert loaded.commits == execution.commits
    assert loaded.changestats == ChangeStats(files=2, insertions=30, deletions=4)
    assert loaded.cost_estimated is True
    assert loaded.cost_known is False
    assert loaded.delivery is not None
    assert loaded.delivery.url == "/srv/web.git"
    assert loaded.start_time.utcoffset() == timedelta(0)
    assert loaded.end_time is not None
    assert loaded.end_time.utcoffset() == timedelta(0)
    assert loaded.end_time - loaded.start_time == timedelta(minutes=3, microseconds=250)


def test_execution_defaults_round_trip(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    execution = Execution(task_id=task.id)
    store.add_execution(execution)
    loaded = store.get_execution(execution.id)
    assert loaded == execution
    assert loaded.end_time is None
    assert loaded.pid is None
    assert loaded.commits == ()
    assert loaded.cost_estimated is False
    assert loaded.cost_known is True
    assert loaded.delivery is None


def test_save_execution_overwrites(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    execution = store.add_execution(Execution(task_id=task.id))
    done = execution.model_copy(
        update={"status": S.COMPLETED, "exit_code": 0, "cost_usd": 0.5, "summary": "ok"}
    )
    store.save_execution(done)
    assert store.get_execution(execution.id) == done
    with pytest.raises(NotFound):
        store.save_execution(Execution(task_id=task.id))
    with pytest.raises(NotFound):
        store.get_execution("missing")


def test_executions_need_an_existing_task(store: Store) -> None:
    with pytest.raises(REFUSED):
        store.add_execution(Execution(task_id="no-such-task"))


def test_latest_and_running_executions(store: Store) -> None:
    a, b, c = store.add_tasks([_task("a"), _task("b"), _task("c")])
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    a_old = store.add_execution(_full_execution(a.id, t0))
    a_new = store.add_execution(Execution(task_id=a.id, start_time=t0 + timedelta(hours=1)))
    b_only = store.add_execution(_full_execution(b.id, t0 + timedelta(minutes=5)))
    assert store.executions_of(a.id) == [a_old, a_new]
    assert store.latest_executions([a.id, b.id, c.id]) == {a.id: a_new, b.id: b_only}
    assert store.latest_executions([]) == {}
    assert store.running_executions() == [a_new]


def test_non_utc_datetimes_keep_their_instant(store: Store) -> None:
    [task] = store.add_tasks([_task()])
    start = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    execution = store.add_execution(Execution(task_id=task.id, start_time=start))
    assert store.get_execution(execution.id).start_time == start  # 10:00 UTC
