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


HANG = "import time; time.sleep(300)"
"""A command that hangs: run as ``python3 -c HANG MARKER``, found by :func:`marked_pid`."""


def hanging_command(marker: str) -> str:
    """A shell command whose python3 child hangs, with ``marker`` as its last argument. It
    needs nothing outside the sandbox, so it hangs the same confined or not."""
    return f"python3 -c '{HANG}' {marker}"


def hanging_script(marker: str) -> list[ToolUse | Text]:
    """The agent runs :func:`hanging_command` (find its host pid with :func:`marked_pid`)."""
    return [ToolUse("Bash", {"command": hanging_command(marker), "timeout": 600000})]


def marked_pids(marker: str) -> list[int]:
    """The host pids of the live ``python3 -c HANG marker`` processes (in any pid namespace:
    /proc here shows a confined agent's processes under their host pids)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode("utf-8", "replace") for a in argv if a]
        ours = len(words) >= 3 and words[-2:] == [HANG, marker] and "python" in words[0]
        if ours and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def marked_pid(marker: str, timeout: float = 30.0) -> int:
    """The host pid of the hanging process ``marker`` names, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = marked_pids(marker)
        if pids:
            return pids[0]
        time.sleep(0.1)
    raise AssertionError(f"no hanging process {marker} started within {timeout}s")
