"""Cancelling the agent of a project confined by ``launcher = "bubblewrap"`` under a ``plain``
orchestrator (issue 13): the task ends CANCELLED and nothing of the namespace is left."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from agent_harness import PoolHarness, make_task, pid_alive, process_tree, wait_for

from claudomator.config import Settings
from claudomator.config.sections import IsolationSettings
from claudomator.models import Project, TaskState
from claudomator.store import Store
from conftest import MakeRepo

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")

GRACEFUL = """#!/bin/sh
trap 'echo flushed > term.txt; exit 0' TERM
echo $$ > ready.txt
while :; do sleep 0.05; done
"""


async def _cancel_confined(
    settings: Settings, store: Store, make_repo: MakeRepo, tmp_path: Path
) -> tuple[TaskState, Path, set[int], str]:
    install = tmp_path / "agent-install"
    install.mkdir()
    binary = install / "claude"
    binary.write_text(GRACEFUL, encoding="utf-8")
    binary.chmod(0o755)
    repo = make_repo()
    project = Project(name="webapp", dir=str(repo), launcher="bubblewrap")
    plain = settings.model_copy(
        update={
            "claude_binary_path": str(binary),
            "kill_grace_seconds": 30,
            "projects": (project,),
            "isolation": IsolationSettings(launcher="plain"),
        }
    )
    assert plain.isolation.launcher == "plain"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    async with PoolHarness(plain, store, env) as h:
        [task] = h.submit(make_task(repo))

        def ready() -> bool:  # the agent has set its trap
            runs = store.executions_of(task.id)
            return bool(runs) and Path(runs[0].sandbox_dir, "ready.txt").is_file()

        await wait_for(ready, 30)
        pid = store.executions_of(task.id)[0].pid
        assert pid is not None
        before = process_tree(pid)
        h.service.cancel(task.id[:8])
        [done] = await h.settle([task], timeout=60)
    [run] = store.executions_of(task.id)
    return done.state, Path(run.sandbox_dir), before, run.confinement


async def test_cancelling_a_project_confined_agent_leaves_nothing(
    settings: Settings, store: Store, make_repo: MakeRepo, tmp_path: Path
) -> None:
    state, _, before, confinement = await _cancel_confined(settings, store, make_repo, tmp_path)
    assert state == TaskState.CANCELLED
    assert confinement == "bubblewrap, network open"
    assert len(before) >= 3  # bwrap, its init, the agent: it really ran confined
    assert not [p for p in before if pid_alive(p)]


async def test_cancelling_a_project_confined_agent_gives_it_its_sigterm(
    settings: Settings, store: Store, make_repo: MakeRepo, tmp_path: Path
) -> None:
    state, sandbox, _, _ = await _cancel_confined(settings, store, make_repo, tmp_path)
    assert state == TaskState.CANCELLED
    assert (sandbox / "term.txt").read_text(encoding="utf-8") == "flushed\n"
