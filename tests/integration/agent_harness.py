"""Helpers for integration tests that run the real Claude Code CLI through the pool, and the
fixtures they share (a test module imports the ones it uses): the fake model server ``fake``, the
user's home ``user_home``, the agent environment ``agent_env`` pointed at both, the settings
``claude_settings`` (the real CLI, a 2 s kill grace) and ``confined`` (the same under the
``bubblewrap`` launcher)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from claudomator.agents import build_registry
from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.dispatch import Pool
from claudomator.models import AgentConfig, Task, TaskState
from claudomator.runtime import pool_parts
from claudomator.service import Service
from claudomator.store import Store
from fakes.anthropic import FakeAnthropic, Text, ToolUse, claude_env

SETTLED = {
    TaskState.COMPLETED,
    TaskState.FAILED,
    TaskState.TIMED_OUT,
    TaskState.BUDGET_EXCEEDED,
    TaskState.CANCELLED,
    TaskState.BLOCKED,
    TaskState.READY,
}


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def user_home(tmp_path: Path) -> Path:
    return tmp_path / "agent-home"


@pytest.fixture
def agent_env(fake: FakeAnthropic, user_home: Path) -> dict[str, str]:
    return claude_env(fake.url, user_home)


@pytest.fixture
def claude_settings(settings: Settings, claude_bin: str) -> Settings:
    return settings.model_copy(update={"claude_binary_path": claude_bin, "kill_grace_seconds": 2})


@pytest.fixture
def confined(claude_settings: Settings) -> Settings:
    return claude_settings.model_copy(
        update={"isolation": IsolationSettings(launcher="bubblewrap")}
    )


def ask(question: str, options: Sequence[str] = ()) -> ToolUse:
    """The agent asks a question through the protocol's question file."""
    payload = json.dumps({"text": question, "options": list(options)})
    return ToolUse("Bash", {"command": f"echo '{payload}' > \"$CLAUDOMATOR_QUESTION_FILE\""})


def make_task(
    project: Path | None,
    instructions: str = "do the thing",
    *,
    agent_type: str = "claude",
    **kwargs: Any,
) -> Task:
    agent = AgentConfig(
        type=agent_type,
        instructions=instructions,
        project_dir=str(project) if project else "",
    )
    return Task(name=str(kwargs.pop("name", "task")), agent=agent, **kwargs)


async def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); treat it as dead
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def process_tree(pid: int) -> set[int]:
    """``pid`` and every process below it, through the kernel's children lists."""
    found = {pid}
    queue = [pid]
    while queue:
        for task in Path(f"/proc/{queue.pop()}/task").glob("*"):
            try:
                children = (task / "children").read_text(encoding="ascii").split()
            except OSError:
                continue
            fresh = {int(c) for c in children} - found
            found |= fresh
            queue += fresh
    return found


class PoolHarness:
    """A pool over a real store, with the agent environment pointed at the fake server."""

    def __init__(self, settings: Settings, store: Store, env: dict[str, str]) -> None:
        self.settings = settings
        self.store = store
        self.service = Service(settings, store)
        self.pool = Pool(
            settings,
            store,
            build_registry(settings),
            **pool_parts(settings, store),
            base_env=env,
            poll_interval=0.2,
        )
        self.service.on_submit = self.pool.wake

    async def __aenter__(self) -> PoolHarness:
        await self.pool.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pool.shutdown()

    def submit(self, *tasks: Task) -> list[Task]:
        return self.service.submit(list(tasks))

    async def settle(self, tasks: Sequence[Task], timeout: float = 90.0) -> list[Task]:
        ids = [t.id for t in tasks]
        await wait_for(lambda: all(self.store.get_task(i).state in SETTLED for i in ids), timeout)
        return [self.store.get_task(i) for i in ids]


HANG = """
import os, sys, time
with open(sys.argv[1], "w") as fh:
    fh.write(str(os.getpid()))
time.sleep(300)
"""


def hanging_script(pidfile: Path) -> list[ToolUse | Text]:
    """The agent runs a command whose child process writes its pid and then hangs."""
    hang = pidfile.parent / "hang.py"
    hang.write_text(HANG, encoding="utf-8")
    command = f"python3 {hang} {pidfile}"
    return [ToolUse("Bash", {"command": command, "timeout": 600000})]
