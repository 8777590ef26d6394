# ruff: noqa: F811  (the fixtures of agent_harness are imported, then used by name)
"""The pool end to end with the real Claude Code CLI against the fake model server.

Real SQLite, real git repositories (and bare remotes), real processes. Only the model is fake.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from agent_harness import (  # noqa: F401  (pytest fixtures)
    PoolHarness,
    agent_env,
    claude_settings,
    fake,
    hanging_script,
    make_task,
    marked_pid,
    pid_alive,
    user_home,
    wait_for,
)

from claudomator import naming
from claudomator.config import Settings
from claudomator.dispatch import Pool, worker_identity
from claudomator.models import Execution, TaskState
from claudomator.process import MARK_VARIABLE
from claudomator.runtime import pool_parts
from claudomator.store import Store
from conftest import MakeRepo, git, kept_branch
from fakes.anthropic import ApiError, FakeAnthropic, Text, ToolUse

pytestmark = pytest.mark.cli


def create_file_script(text: str = "hello from the agent") -> list[Text | ToolUse]:
    return [
        ToolUse("Bash", {"command": f"echo '{text}' > hello.txt"}, text="I'll create the file."),
        Text("Done.\n\n## Summary\nCreated hello.txt with a greeting."),
    ]


def only_execution(store: Store, task_id: str) -> Execution:
    runs = store.executions_of(task_id)
    assert len(runs) == 1
    return runs[0]


async def test_agent_work_is_committed_and_kept_as_a_branch(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    project = make_repo()
    user_head = git(project, "rev-parse", "HEAD")
    fake.set_script(create_file_script())
    async with PoolHarness(claude_settings, store, agent_env) as h:
        [task] = h.submit(make_task(project, "Create hello.txt"))
        [done] = await h.settle([task])

    execution = only_execution(store, task.id)
    assert done.state == TaskState.COMPLETED, execution.error_msg
    assert done.summary == "Created hello.txt with a greeting."
    assert [c.message for c in execution.commits] == [task.name]  # named after the task
    assert execution.changestats.files == 1
    assert execution.changestats.insertions == 1
    assert execution.cost_usd > 0
    assert execution.tokens_in > 0
    assert execution.tokens_out > 0
    assert execution.exit_code == 0
    # delivered as a branch; the user's checkout is untouched
    branch = kept_branch(project, task.id)
    assert execution.delivery is not None
    assert execution.delivery.branch == branch == naming.task_branch(task.id, task.name)
    assert git(project, "rev-parse", branch) == execution.commits[0].hash
    assert git(project, "show", f"{branch}:hello.txt") == "hello from the agent"
    assert git(project, "rev-parse", "HEAD") == user_head
    assert git(project, "status", "--porcelain") == ""
    assert not (project / "hello.txt").exists()
    # the raw stream is on disk, the sandbox is gone, the session is the one we gave
    lines = Path(execution.stdout_path).read_text().splitlines()
    assert json.loads(lines[0])["subtype"] == "init"
    assert json.loads(lines[-1])["type"] == "result"
    assert execution.session_id == fake.requests[0].session_id
    assert not Path(execution.sandbox_dir).exists()
    # the agent ran in the sandbox and got the protocol environment
    body = json.dumps(fake.requests[0].body)
    assert execution.sandbox_dir in body
    history = [(e.from_state, e.to_state) for e in store.events(task.id)]
    assert history == [
        (None, TaskState.PENDING),
        (TaskState.PENDING, TaskState.QUEUED),
        (TaskState.QUEUED, TaskState.RUNNING),
        (TaskState.RUNNING, TaskState.COMPLETED),
    ]


async def test_agent_work_is_pushed_to_a_local_bare_remote(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    project = make_repo()
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(project, "remote", "add", "local", str(bare))
    git(project, "push", "-q", "local", "main")
    fake.set_script(create_file_script("pushed"))
    async with PoolHarness(claude_settings, store, agent_env) as h:
        [task] = h.submit(make_task(project, "Create hello.txt"))
        [done] = await h.settle([task])

    execution = only_execution(store, task.id)
    assert done.state == TaskState.COMPLETED, execution.error_msg
    assert git(bare, "rev-parse", "main") == execution.commits[-1].hash
    assert git(bare, "show", "main:hello.txt") == "pushed"
    assert git(project, "branch", "--list", "claudomator/*") == ""


async def test_model_server_failing_every_time_fails_the_task_with_the_api_error(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
) -> None:
    project = make_repo()
    fake.set_script([ApiError(500)], repeat_last=True)
    async with PoolHarness(claude_settings, store, agent_env) as h:
        [task] = h.submit(make_task(project))
        [done] = await h.settle([task])

    execution = only_execution(store, task.id)
    assert done.state == TaskState.FAILED
    assert execution.status == TaskState.FAILED
    assert execution.exit_code == 1
    assert "API Error: 500" in execution.error_msg
    # the sandbox is preserved for inspection and named in the error
    assert Path(execution.sandbox_dir).is_dir()
    assert execution.sandbox_dir in execution.error_msg
    assert "API Error: 500" in store.events(task.id)[-1].reason


async def test_hanging_agent_is_killed_with_its_children_at_the_timeout(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    project = make_repo()
    marker = f"hang-{tmp_path.name}"
    fake.set_script(hanging_script(marker))
    async with PoolHarness(claude_settings, store, agent_env) as h:
        [task] = h.submit(make_task(project, timeout=6))
        child = await asyncio.to_thread(marked_pid, marker)
        assert pid_alive(child)
        [done] = await h.settle([task])

    execution = only_execution(store, task.id)
    assert done.state == TaskState.TIMED_OUT
    assert "timed out after 6s" in execution.error_msg
    await wait_for(lambda: not pid_alive(child), 5)
    assert execution.pid is not None
    assert not pid_alive(execution.pid)


async def test_cancel_stops_a_running_agent(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    project = make_repo()
    marker = f"hang-{tmp_path.name}"
    fake.set_script(hanging_script(marker))
    async with PoolHarness(claude_settings, store, agent_env) as h:
        [task] = h.submit(make_task(project))
        child = await asyncio.to_thread(marked_pid, marker)
        h.service.cancel(task.id[:8])
        [done] = await h.settle([task], timeout=20)

    assert done.state == TaskState.CANCELLED
    assert not done.cancel_requested
    execution = only_execution(store, task.id)
    assert execution.status == TaskState.CANCELLED
    assert Path(execution.sandbox_dir).is_dir()  # the agent's work is kept
    await wait_for(lambda: not pid_alive(child), 5)


async def test_shutdown_requeues_running_tasks(
    claude_settings: Settings,
    store: Store,
    fake: FakeAnthropic,
    agent_env: dict[str, str],
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    project = make_repo()
    marker = f"hang-{tmp_path.name}"
    fake.set_script(hanging_script(marker))
    h = PoolHarness(claude_settings, store, agent_env)
    async with h:
        [task] = h.submit(make_task(project))
        child = await asyncio.to_thread(marked_pid, marker)
    # leaving the block shut the pool down
    stopped = store.get_task(task.id)
    assert stopped.state == TaskState.QUEUED
    assert store.events(task.id)[-1].reason == "orchestrator shutdown; re-queued"
    assert not pid_alive(child)


@pytest.mark.parametrize(("policy", "final"), [("requeue", "QUEUED"), ("fail", "FAILED")])
def test_reconcile_recovers_work_of_a_dead_orchestrator_and_kills_its_agent(
    policy: str, final: str, claude_settings: Settings, store: Store, make_repo: MakeRepo
) -> None:
    project = make_repo()
    [task] = store.add_tasks([make_task(project)])
    execution = Execution(task_id=task.id, agent="claude")
    marked = {**os.environ, MARK_VARIABLE: execution.id}
    # the agent, and a child it detached into its own session: both carry the mark
    orphan = subprocess.Popen(["sleep", "300"], start_new_session=True, env=marked)
    detached = subprocess.Popen(["sleep", "301"], start_new_session=True, env=marked)
    bystander = subprocess.Popen(["sleep", "302"], start_new_session=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        store.transition(
            task.id,
            TaskState.RUNNING,
            "claimed",
            execution=execution.model_copy(
                update={"worker_id": f"{socket.gethostname()}:{dead.pid}:x-1", "pid": orphan.pid}
            ),
        )
        # a live orchestrator's execution is left alone
        [live_task] = store.add_tasks([make_task(project, name="live")])
        store.transition(
            live_task.id,
            TaskState.RUNNING,
            "claimed",
            execution=Execution(task_id=live_task.id, worker_id=worker_identity()),
        )
        restarted = claude_settings.model_copy(update={"on_restart": policy})
        pool = Pool(restarted, store, {}, **pool_parts(restarted, store))
        assert pool.reconcile() == 1
        orphan.wait(timeout=5)
        detached.wait(timeout=5)
        assert bystander.poll() is None  # not marked: not ours to kill
        assert pool.reconcile() == 0  # idempotent
    finally:
        for proc in (orphan, detached, bystander):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert store.get_task(task.id).state == TaskState(final)
    assert store.events(task.id)[-1].reason == "orchestrator restarted"
    [closed] = store.executions_of(task.id)
    assert closed.status == (TaskState.QUEUED if policy == "requeue" else TaskState.FAILED)
    assert "orchestrator restarted" in closed.error_msg
    assert store.get_task(live_task.id).state == TaskState.RUNNING
