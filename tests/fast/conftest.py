"""A pool over the in-memory store with scripted agents, started and stopped per test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from claudomator.config import Settings
from claudomator.dispatch import Pool
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.notify import Notifier
from claudomator.runtime import pool_parts
from claudomator.service import Service
from claudomator.store.base import Store
from claudomator.store.memory import MemoryStore
from fast.scripted import ScriptedRunner, registry_with

WAIT = 5.0  # seconds: far more than any step here takes; a hang fails the test


async def until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``check`` (every millisecond) until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


def task(name: str, agent: str = "", **fields: Any) -> Task:
    """A project-less task (it runs in a scratch repository) for ``agent`` ("": unpinned)."""
    return Task(name=name, agent=AgentConfig(instructions=f"do {name}", type=agent), **fields)


@dataclass
class Rig:
    """What a fast test drives: settings, the store (``memory`` is the real one, ``store`` what
    the pool was given), a service over it, the pool and its scripted agents."""

    settings: Settings
    memory: MemoryStore
    store: Store
    runners: dict[str, ScriptedRunner]
    service: Service
    pools: list[Pool] = field(default_factory=list)

    def pool(self, **options: Any) -> Pool:
        options.setdefault("poll_interval", 0.01)
        options.setdefault("base_env", {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        options.setdefault("notifier", Notifier(""))
        options.setdefault("sandboxes", pool_parts(self.settings, self.store)["sandboxes"])
        pool = Pool(self.settings, self.store, self.runners, **options)
        self.pools.append(pool)
        return pool

    async def started(self, **options: Any) -> Pool:
        pool = self.pool(**options)
        await pool.start()
        return pool

    def submit(self, *tasks: Task) -> list[Task]:
        submitted = self.memory.add_tasks(list(tasks))
        for pool in self.pools:
            pool.wake()
        return submitted

    def get(self, task_id: str) -> Task:
        return self.memory.get_task(task_id)

    async def reaches(self, task_id: str, *states: TaskState) -> Task:
        """Wait until the task is in one of ``states``; the task then."""
        await until(lambda: self.get(task_id).state in states, f"{task_id} in {states}")
        return self.get(task_id)

    async def requeued(self, task_id: str) -> Task:
        """Wait until a run of the task ended in a re-queue and the task is QUEUED again."""

        def back() -> bool:
            runs = self.memory.executions_of(task_id)
            ended = bool(runs) and runs[-1].status == TaskState.QUEUED
            return ended and self.get(task_id).state == TaskState.QUEUED

        await until(back, f"{task_id} re-queued")
        return self.get(task_id)

    async def runs(self, runner: str, task_id: str) -> None:
        """Wait until ``runner`` is running ``task_id``."""
        await until(lambda: task_id in self.runners[runner].active, f"{runner} runs {task_id}")


def make_rig(
    settings: Settings,
    runners: Mapping[str, ScriptedRunner],
    wrap: Callable[[MemoryStore], Store] | None = None,
) -> Rig:
    memory = MemoryStore()
    store = wrap(memory) if wrap is not None else memory
    registry = registry_with(*runners.values())
    return Rig(settings, memory, store, dict(runners), Service(settings, memory, agents=registry))


@pytest.fixture
def runner() -> ScriptedRunner:
    return ScriptedRunner(name="scripted")


@pytest.fixture
async def rig(settings: Settings, runner: ScriptedRunner) -> AsyncIterator[Rig]:
    """One scripted agent (``scripted``); the test adds steps and starts the pool it needs."""
    made = make_rig(settings, {runner.name: runner})
    try:
        yield made
    finally:
        for pool in made.pools:
            await pool.shutdown()
