"""The server under a locked database, starved thread pools and slow clients (issue 10, 7-9)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from server_harness import DatabaseLock, gated_agent, get, get_json, runs_of, serving

from claudomator.config import Settings
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.service import Service
from claudomator.store import Store
from conftest import MakeRepo, git

BUSY_TIMEOUT = 0.2  # seconds our writes wait for the other process's lock


async def until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        await asyncio.sleep(0.05)


async def test_outcome_refused_by_a_locked_database_is_stored_once_the_lock_is_gone(
    tmp_path: Path, settings: Settings, make_repo: MakeRepo
) -> None:
    project = make_repo()
    state = tmp_path / "agent-state"
    settings = settings.model_copy(
        update={"claude_binary_path": str(gated_agent(tmp_path / "bin", state))}
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(settings.db_path, busy_timeout=BUSY_TIMEOUT)
    service = Service(settings, store)
    agent = AgentConfig(type="claude", instructions="write a file", project_dir=str(project))
    locker: DatabaseLock | None = None
    try:
        async with serving(settings, service) as url:
            [task] = service.submit([Task(name="locked-out", agent=agent)])

            async def agent_started() -> bool:
                return runs_of(state, task.id) == 1

            await until(agent_started, 30, "the agent started")
            # another process (a backup, a sqlite3 shell) takes the database past our timeout
            locker = DatabaseLock(settings.db_path)
            (state / f"{task.id}.go").touch()  # the agent finishes and its work is delivered

            async def refused_again() -> bool:
                health = await get_json(f"{url}/api/health")
                retried = store.backlog.state().failures_total >= 3
                return bool(health["pending_outcomes"] == 1 and retried)

            await until(refused_again, 30, "the outcome write was refused and retried")
            health = await get_json(f"{url}/api/health")
            assert health["status"] == "degraded", health
            assert "locked" in health["detail"], health
            metrics = await asyncio.to_thread(_metrics, url)
            try:
                assert "claudomator_pending_outcomes 1" in metrics, metrics
                assert store.get_task(task.id).state == TaskState.RUNNING  # kept, not yet stored
                delivered = git(project, "log", "--all", "--name-only", "--format=")
                assert f"work-{task.id}.txt" in delivered  # its work is in the project
            finally:  # a failure must not leave the pool waiting for the lock at shutdown
                locker.release()

            async def completed() -> bool:
                return store.get_task(task.id).state == TaskState.COMPLETED

            await until(completed, 30, "the task reached its real outcome without a restart")
            health = await get_json(f"{url}/api/health")
            assert health["status"] == "ok", health
            assert health["pending_outcomes"] == 0, health
    finally:
        if locker is not None:
            locker.release()
        store.close()
    assert runs_of(state, task.id) == 1, "the agent ran more than once"
    [execution] = store.executions_of(task.id)
    assert execution.status == TaskState.COMPLETED
    assert len(execution.commits) == 1, execution


def _metrics(url: str) -> str:
    return get(f"{url}/metrics")[1]
