"""Scale of the store: claim latency with a long history of finished tasks vs with none.

A claim is what the pool does to start a task, timed around :meth:`Pool._claim_all` with one
queued task (an unpinned one, so the agent choice reads the task's executions): read the agent
statuses and the queue, choose the agent, then move the task to RUNNING with its execution row
in one transaction. The agent job that the claim starts is cancelled before it runs.

The history (``BENCH_STORE_HISTORY``, 100,000 tasks) is inserted in bulk through the store's
tables: each finished task has its execution and four events, like a real completed task. The
database is generated once into ``bench/.cache/`` and copied for each run.

Target: claim latency (median) with the history <= 1.5x without.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchlib import CACHE, Figure, Result, env_int, isolated, log, median, percentile, scratch
from claudomator.agents import build_registry
from claudomator.config import load_settings
from claudomator.dispatch import Pool
from claudomator.models import AgentConfig, Execution, Task, TaskState, utcnow
from claudomator.runtime import pool_parts
from claudomator.store import Store
from claudomator.store.sql.rows import execution_row as _execution_row
from claudomator.store.sql.rows import task_row as _task_row
from claudomator.store.tables import executions, task_events, tasks

NAME = "store"
TITLE = "Store scale (claim latency)"
TARGET = 1.5
_BATCH = 5000
Row = dict[str, Any]


def _history_rows(start: int, count: int) -> tuple[list[Row], list[Row], list[Row]]:
    base = utcnow() - timedelta(days=365)
    task_rows, exec_rows, event_rows = [], [], []
    for i in range(start, start + count):
        at = base + timedelta(seconds=i * 60)
        task = Task(
            name=f"finished {i}",
            agent=AgentConfig(
                type="claude", instructions=f"Old work {i}. " * 10, project_dir=f"/srv/p{i % 9}"
            ),
            tags=("old",),
            state=TaskState.COMPLETED if i % 10 else TaskState.FAILED,
            summary="Did the thing. " * 5,
            created_at=at,
            updated_at=at + timedelta(minutes=5),
        )
        task_rows.append(_task_row(task))
        execution = Execution(
            task_id=task.id,
            agent="claude",
            model="claude-opus-5-5",
            start_time=at + timedelta(seconds=1),
            end_time=at + timedelta(minutes=5),
            exit_code=0,
            status=task.state,
            stdout_path=f"/data/logs/{i}/stdout.log",
            stderr_path=f"/data/logs/{i}/stderr.log",
            cost_usd=0.01,
            session_id=task.id,
            summary="Did the thing.",
            worker_id="host:1:boot-1",
            pid=1000 + i % 30000,
        )
        exec_rows.append(_execution_row(execution))
        steps = [
            (None, TaskState.PENDING, "created"),
            (TaskState.PENDING, TaskState.QUEUED, "submitted"),
            (TaskState.QUEUED, TaskState.RUNNING, "claimed"),
            (TaskState.RUNNING, task.state, "done"),
        ]
        for n, (source, target, reason) in enumerate(steps):
            event_rows.append(
                {
                    "task_id": task.id,
                    "at": at + timedelta(seconds=n),
                    "from_state": source.value if source else None,
                    "to_state": target.value,
                    "reason": reason,
                }
            )
    return task_rows, exec_rows, event_rows


def ensure_history_db(count: int) -> Path:
    """A database holding ``count`` finished tasks, generated once."""
    path = CACHE / "store" / f"history-{count}.db"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    log(f"  generating a store with {count} finished tasks (one time) ...")
    started = time.perf_counter()
    store = Store.open(partial)
    engine = store._engine
    with engine.begin() as conn:
        for start in range(0, count, _BATCH):
            task_rows, exec_rows, event_rows = _history_rows(start, min(_BATCH, count - start))
            conn.execute(tasks.insert(), task_rows)
            conn.execute(executions.insert(), exec_rows)
            conn.execute(task_events.insert(), event_rows)
    with engine.connect() as conn:
        conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
    store.close()
    partial.rename(path)
    log(f"  ... in {time.perf_counter() - started:.0f}s")
    return path


async def claims(pool: Pool, store: Store, count: int) -> list[float]:
    """Milliseconds of each of ``count`` claims of a freshly queued task."""
    timings: list[float] = []
    for i in range(count):
        [task] = store.add_tasks(
            [Task(name=f"new {i}", agent=AgentConfig(instructions="x", skip_planning=True))]
        )
        started = time.perf_counter()
        await pool._claim_all()
        timings.append((time.perf_counter() - started) * 1000)
        running = pool._running.pop(task.id, None)
        if running is None or running.job is None:
            raise RuntimeError("the task was not claimed")
        running.job.cancel()  # before it ever runs: no sandbox, no agent
        store.transition(task.id, TaskState.CANCELLED, "bench", expected=TaskState.RUNNING)
    return timings


async def measure(db: Path | None, root: Path, count: int) -> list[float]:
    with isolated(root):
        settings = load_settings().model_copy(update={"max_concurrent": 8})
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if db is not None:
            shutil.copyfile(db, settings.db_path)
        store = Store.open(settings.db_path)
        try:
            pool = Pool(
                settings,
                store,
                build_registry(settings),
                **pool_parts(settings, store),
                chooser=None,
            )
            await claims(pool, store, min(20, count))  # warm up
            return await claims(pool, store, count)
        finally:
            store.close()


def run(size: str = "full") -> Result:
    history = env_int("BENCH_STORE_HISTORY", 100_000, 2000, size)
    count = env_int("BENCH_STORE_CLAIMS", 300, 50, size)
    runs = env_int("BENCH_STORE_RUNS", 3, 1, size)
    db = ensure_history_db(history)
    empty_ms: list[float] = []
    full_ms: list[float] = []
    empty_medians: list[float] = []
    full_medians: list[float] = []
    for r in range(runs):
        with scratch("store-empty-") as root:
            got = asyncio.run(measure(None, root, count))
            empty_ms += got
            empty_medians.append(median(got))
        with scratch("store-full-") as root:
            got = asyncio.run(measure(db, root, count))
            full_ms += got
            full_medians.append(median(got))
        log(
            f"  store run {r + 1}: claim {empty_medians[-1]:.2f} ms empty,"
            f" {full_medians[-1]:.2f} ms with the history"
        )
    empty, full = median(empty_medians), median(full_medians)
    ratio = full / empty
    return Result(
        name=NAME,
        title=TITLE,
        figures=[
            Figure("claim p50, empty store", empty, "ms"),
            Figure("claim p99, empty store", percentile(empty_ms, 99), "ms"),
            Figure(f"claim p50, {history} finished tasks", full, "ms"),
            Figure(f"claim p99, {history} finished tasks", percentile(full_ms, 99), "ms"),
        ],
        ratio=ratio,
        target=f"ratio <= {TARGET}",
        passed=ratio <= TARGET,
        headline=f"{ratio:.2f}x ({full:.1f} vs {empty:.1f} ms)",
        params={"history": history, "claims": count, "runs": runs},
    )
