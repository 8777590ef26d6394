"""Agents that ignore SIGTERM and fork grandchildren: cancel and timeout leave nothing behind."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from robust import marked_alive, pid_alive, pids_of, reap, write_agent

from claudomator.agents import build_registry
from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.dispatch import Pool
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.runtime import pool_parts
from claudomator.service import Service
from claudomator.store import Store
from conftest import MakeRepo

GRACE = 1.0


async def until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("ending", ["cancel", "timeout"])
async def test_stubborn_agent_tree_is_gone_after_cancel_or_timeout(
    tmp_path: Path, settings: Settings, store: Store, make_repo: MakeRepo, ending: str
) -> None:
    project = make_repo()
    state = tmp_path / "agent-state"
    state.mkdir()
    settings = settings.model_copy(
        update={
            "claude_binary_path": str(write_agent(tmp_path / "bin")),
            "kill_grace_seconds": GRACE,
            # the plain launcher's tree kill (the mark sweep), with the agent's pids reported
            # through a state dir outside its sandbox; test_confined_stop has the confined one
            "isolation": IsolationSettings(launcher="plain"),
        }
    )
    service = Service(settings, store)
    env = {**os.environ, "ROBUST_STATE_DIR": str(state)}
    pool = Pool(
        settings,
        store,
        build_registry(settings),
        **pool_parts(settings, store),
        base_env=env,
        poll_interval=0.1,
    )
    service.on_submit = pool.wake
    agent = AgentConfig(type="claude", instructions="ROBUST[stubborn]", project_dir=str(project))
    timeout = 2.5 if ending == "timeout" else 600.0
    [task] = service.submit([Task(name="stubborn", agent=agent, timeout=timeout)])
    await pool.start()
    tree: list[int] = []
    try:
        await until(lambda: len(pids_of(state, task.id)) == 4, 30, "the agent spawned its tree")
        tree = pids_of(state, task.id) + pids_of(state, task.id, "daemon")
        assert len(tree) == 5
        assert all(pid_alive(p) for p in tree)
        started = time.monotonic()
        if ending == "cancel":
            service.cancel(task.id)
        expected = TaskState.CANCELLED if ending == "cancel" else TaskState.TIMED_OUT
        await until(lambda: store.get_task(task.id).state == expected, 30, f"{expected}")
        took = time.monotonic() - started
    finally:
        await pool.shutdown()
        reap(tree)
    alive = [p for p in tree if pid_alive(p)]
    assert alive == [], f"left alive after {ending}: {alive} of {tree}"
    [execution] = store.executions_of(task.id)
    assert marked_alive({execution.id}) == []
    assert execution.status == expected
    # SIGTERM is ignored, so it takes the grace period (twice at most: group, then leftovers)
    assert took < timeout * (ending == "timeout") + 4 * GRACE + 5, took
